// Save on N ranks, load on M: engines as threads over a HashStore; the
// resumed run must retrace the uninterrupted one. Damaged and mismatched
// checkpoints are refused with nothing loaded; readers touch only the
// blocks they need.
#include "runtime/checkpoint/checkpoint.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "runtime/checkpoint/atomic_file.h"
#include "runtime/checkpoint/checkpoint_reader.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/checkpoint/shard_file.h"
#include "runtime/comm/gloo/gloo_communicator.h"
#include "runtime/core/error.h"
#include "runtime/rendezvous/hash_store.h"
#include "runtime/zero/session.h"
#include "runtime/zero/zero_engine.h"

#include "tests/support/temp_dir.h"

namespace zshard::checkpoint {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::vector<std::vector<int64_t>> kShapes = {{13, 7}, {50}, {3, 3, 3}, {1}, {129}};
constexpr float kLr = 1e-2f;

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

config::OptimizerConfig adamW() {
  config::OptimizerConfig c;
  c.type = config::OptimizerType::kAdamW;
  c.given = true;
  c.lr = kLr;
  c.weight_decay = 0.01;
  return c;
}

ModelInfo modelInfo(zero::ZeroEngine& engine) {
  ModelInfo m;
  for (size_t i = 0; i < kShapes.size(); ++i) m.names.push_back("p" + std::to_string(i));
  m.shapes = kShapes;
  m.optimizer_type = "AdamW";
  for (const char* name : engine.stateBufferNames()) m.buffer_names.push_back(name);
  m.scheduler_type = "none";
  return m;
}

// One rank's engine over a HashStore shared by threads.
struct Rank {
  Rank(rendezvous::Store& store, int rank, int world, float seed)
      : comm(comm::makeGlooCommunicator(store, rank, world, options())) {
    std::vector<const float*> ptrs;
    for (size_t k = 0; k < kShapes.size(); ++k) {
      init.emplace_back(numel(kShapes[k]));
      for (int64_t i = 0; i < numel(kShapes[k]); ++i) init[k][i] = std::cos(seed * i + k);
      ptrs.push_back(init[k].data());
    }
    std::vector<shard::ParamSpec> specs;
    for (const auto& s : kShapes) specs.push_back({s, DType::kFloat32});
    zero::EngineOptions o;
    o.param_dtype = o.grad_dtype = DType::kFloat32;
    o.bucket_numel = 40;
    o.alignment = 4;
    o.timeout = 30s;
    engine = std::make_unique<zero::ZeroEngine>(specs, ptrs, *comm, adamW(), o);
  }
  static comm::GlooOptions options() {
    comm::GlooOptions g;
    g.timeout = 30s;
    return g;
  }
  // Global step t: every rank's gradient is the same, so the mean does not
  // depend on the world size.
  void train(int first, int steps) {
    for (int t = first; t < first + steps; ++t) {
      for (int k = static_cast<int>(kShapes.size()) - 1; k >= 0; --k) {
        std::vector<float> g(numel(kShapes[k]));
        for (size_t i = 0; i < g.size(); ++i) g[i] = std::sin(0.1f * (i + 1) * (t + 1) + k);
        engine->addGradient(k, g.data());
      }
      engine->step(kLr);
    }
  }
  std::vector<float> weights(int k) {
    const float* p = static_cast<const float*>(engine->parameter(k));
    return {p, p + numel(kShapes[k])};
  }
  Counters counters() { return {engine->optimizerSteps(), 0, 0, engine->lossScalerState()}; }

  std::vector<std::vector<float>> init;
  std::unique_ptr<comm::Communicator> comm;
  std::unique_ptr<zero::ZeroEngine> engine;
};

void onThreads(int world, const std::function<void(int rank, rendezvous::Store&)>& fn) {
  rendezvous::HashStore store;
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        fn(r, store);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "rank " << r << ": " << e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
}

class CheckpointTest : public testing::TempDirTest {
 protected:
  CheckpointTest() : TempDirTest("zshard_ckpt_") {}

  // A 2-rank run: 4 steps, save "t4", 5 more steps; returns its final weights.
  std::vector<std::vector<float>> saveOnTwo() {
    std::vector<std::vector<float>> final_weights;
    onThreads(2, [&](int rank, rendezvous::Store& store) {
      Rank r(store, rank, 2, 0.3f);
      r.train(0, 4);
      rendezvous::PrefixStore op(store, "save");
      SaveRequest req{dir_.string(), "t4", true, "client", "rank" + std::to_string(rank)};
      save({&op, rank, 2, 30s}, req, r.engine->plan(), modelInfo(*r.engine),
           zero::shardStateOf(*r.engine), r.counters());
      r.train(4, 5);
      if (rank == 0) {
        for (size_t k = 0; k < kShapes.size(); ++k) final_weights.push_back(r.weights(k));
      }
    });
    return final_weights;
  }

  std::string shardFile(int rank) const {
    for (const auto& e : fs::directory_iterator(dir_ / "t4")) {
      if (e.path().filename().string().rfind("shard-r" + std::to_string(rank) + "-", 0) == 0)
        return e.path().string();
    }
    return "";
  }
};

class ResumeOn : public CheckpointTest, public ::testing::WithParamInterface<int> {};

TEST_P(ResumeOn, RetracesTheUninterruptedRun) {
  const auto want = saveOnTwo();
  ASSERT_EQ(want.size(), kShapes.size());
  const int world = GetParam();
  onThreads(world, [&](int rank, rendezvous::Store& store) {
    Rank r(store, rank, world, 0.9f);  // other starting weights
    rendezvous::PrefixStore op(store, "load");
    const LoadResult loaded = load({&op, rank, world, 30s}, dir_.string(), "", {}, r.engine->plan(),
                                   modelInfo(*r.engine), zero::shardStateOf(*r.engine));
    EXPECT_TRUE(loaded.found);
    EXPECT_EQ(loaded.client_state, "client");
    EXPECT_EQ(loaded.saved_world_size, 2);
    EXPECT_EQ(loaded.rank_state, rank < 2 ? "rank" + std::to_string(rank) : "");
    EXPECT_EQ(loaded.counters.optimizer_step, 4);
    r.engine->resume(loaded.counters.optimizer_step, &loaded.counters.loss_scaler);
    r.train(4, 5);
    for (size_t k = 0; k < kShapes.size(); ++k) {
      const std::vector<float> got = r.weights(k);
      double diff = 0, base = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        diff = std::max(diff, std::fabs(double(got[i]) - want[k][i]));
        base = std::max(base, std::fabs(double(want[k][i])));
      }
      EXPECT_LT(diff / base, 1e-6) << "parameter " << k << " on rank " << rank;
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Worlds, ResumeOn, ::testing::Values(1, 2, 3, 4));

TEST_F(CheckpointTest, CorruptShardIsRefusedOnEveryRankAndNothingChanges) {
  saveOnTwo();
  const std::string victim = shardFile(1);
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  onThreads(2, [&](int rank, rendezvous::Store& store) {
    Rank r(store, rank, 2, 0.9f);
    const std::vector<float> before = r.weights(0);
    const float master0 = r.engine->stateParts()[0].buffers[0].data[0];
    rendezvous::PrefixStore op(store, "load");
    try {
      load({&op, rank, 2, 30s}, dir_.string(), "t4", {}, r.engine->plan(), modelInfo(*r.engine),
           zero::shardStateOf(*r.engine));
      ADD_FAILURE() << "rank " << rank << " loaded a corrupt checkpoint";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("\"" + victim + "\" is corrupt: block 0"),
                std::string::npos)
          << e.what();
    }
    EXPECT_EQ(r.engine->stateParts()[0].buffers[0].data[0], master0);
    EXPECT_EQ(r.weights(0), before);
  });
}

TEST_F(CheckpointTest, OtherModelAndOtherOptimizerAreRefused) {
  saveOnTwo();
  onThreads(1, [&](int rank, rendezvous::Store& store) {
    Rank r(store, rank, 1, 0.9f);
    ModelInfo renamed = modelInfo(*r.engine);
    renamed.names[2] = "other";
    rendezvous::PrefixStore op1(store, "a"), op2(store, "b");
    try {
      load({&op1, 0, 1, 30s}, dir_.string(), "t4", {}, r.engine->plan(), renamed,
           zero::shardStateOf(*r.engine));
      ADD_FAILURE() << "loaded into another model";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("this model's parameter 'other' [3, 3, 3] is not in "
                                           "the checkpoint"),
                std::string::npos)
          << e.what();
    }
    ModelInfo sgd = modelInfo(*r.engine);
    sgd.optimizer_type = "SGD";
    EXPECT_THROW(load({&op2, 0, 1, 30s}, dir_.string(), "t4", {}, r.engine->plan(), sgd,
                      zero::shardStateOf(*r.engine)),
                 IoError);
  });
}

// Parameters match by name: a run that lays them out in another order
// (another stage, other parameter groups) loads the same checkpoint, each
// parameter's state where its name is.
TEST_F(CheckpointTest, ParametersInAnotherOrderLoadByName) {
  saveOnTwo();
  onThreads(1, [&](int rank, rendezvous::Store& store) {
    Rank r(store, rank, 1, 0.9f);
    rendezvous::PrefixStore op1(store, "a"), op2(store, "b");
    load({&op1, 0, 1, 30s}, dir_.string(), "t4", {}, r.engine->plan(), modelInfo(*r.engine),
         zero::shardStateOf(*r.engine));
    r.engine->resume(4, nullptr);
    const int n = static_cast<int>(kShapes.size());
    std::vector<shard::ParamSpec> reversed;
    std::vector<std::vector<float>> zeros;
    std::vector<const float*> ptrs;
    ModelInfo info = modelInfo(*r.engine);
    for (int k = n - 1; k >= 0; --k) {
      reversed.push_back({kShapes[k], DType::kFloat32});
      zeros.emplace_back(numel(kShapes[k]), 0.f);
      ptrs.push_back(zeros.back().data());
    }
    std::reverse(info.names.begin(), info.names.end());
    std::reverse(info.shapes.begin(), info.shapes.end());
    comm::GlooOptions gloo = Rank::options();
    gloo.store_prefix = "gloo-other";
    auto comm = comm::makeGlooCommunicator(store, 0, 1, gloo);
    zero::EngineOptions o;
    o.param_dtype = o.grad_dtype = DType::kFloat32;
    o.alignment = 4;
    zero::ZeroEngine other(reversed, ptrs, *comm, adamW(), o);
    load({&op2, 0, 1, 30s}, dir_.string(), "t4", {}, other.plan(), info, zero::shardStateOf(other));
    other.resume(4, nullptr);
    for (int k = 0; k < n; ++k) {
      const float* p = static_cast<const float*>(other.parameter(n - 1 - k));
      EXPECT_EQ(std::vector<float>(p, p + numel(kShapes[k])), r.weights(k)) << "p" << k;
    }
  });
}

// keep_last: each save keeps the newest K tags (the new one always), and
// nothing in the directory that is not a tag.
TEST_F(CheckpointTest, KeepLastRemovesOlderTagsOnlyAfterTheNewLatest) {
  fs::create_directories(dir_ / "notes");
  { std::ofstream(dir_ / "latest.tmp.99999") << "t0"; }  // a save killed writing `latest`
  onThreads(1, [&](int rank, rendezvous::Store& store) {
    Rank r(store, rank, 1, 0.4f);
    for (int t = 1; t <= 4; ++t) {
      r.train(t - 1, 1);
      rendezvous::PrefixStore op(store, "rot" + std::to_string(t));
      SaveRequest req{dir_.string(), "t" + std::to_string(t), true, "", ""};
      req.keep_last = 2;
      save({&op, 0, 1, 30s}, req, r.engine->plan(), modelInfo(*r.engine),
           zero::shardStateOf(*r.engine), r.counters());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // distinct manifest times
    }
  });
  EXPECT_FALSE(fs::exists(dir_ / "t1"));
  EXPECT_FALSE(fs::exists(dir_ / "t2"));
  EXPECT_TRUE(fs::exists(dir_ / "t3" / "manifest.zshard"));
  EXPECT_TRUE(fs::exists(dir_ / "t4" / "manifest.zshard"));
  EXPECT_TRUE(fs::exists(dir_ / "notes"));
  EXPECT_FALSE(fs::exists(dir_ / "latest.tmp.99999"));
  std::ifstream latest(dir_ / "latest");
  std::string tag;
  latest >> tag;
  EXPECT_EQ(tag, "t4");
}

// `latest` names a tag inside the save directory, nothing else.
TEST_F(CheckpointTest, ALatestNamingAPathOutsideTheSaveDirIsRefused) {
  saveOnTwo();
  for (const std::string& tag : {"../t4", "t4/../../x", ".."}) {
    { std::ofstream(dir_ / "latest") << tag; }
    try {
      CheckpointReader reader(dir_.string(), "");
      ADD_FAILURE() << "followed latest = " << tag;
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("expected the name of a tag directory inside"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST_F(CheckpointTest, MissingLatestFindsNothingAndCorruptManifestIsRefused) {
  onThreads(1, [&](int, rendezvous::Store& store) {
    Rank r(store, 0, 1, 0.9f);
    rendezvous::PrefixStore op(store, "a");
    EXPECT_FALSE(load({&op, 0, 1, 30s}, dir_.string(), "", {}, r.engine->plan(),
                      modelInfo(*r.engine), zero::shardStateOf(*r.engine))
                     .found);
  });
  saveOnTwo();
  try {
    CheckpointReader reader(dir_.string(), "t5");
    ADD_FAILURE() << "opened a tag that does not exist";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("t5\" does not exist"), std::string::npos) << e.what();
  }
  {
    std::fstream f(dir_ / "t4" / "manifest.zshard",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x01');
  }
  EXPECT_THROW(
      {
        try {
          CheckpointReader reader(dir_.string(), "");
        } catch (const IoError& e) {
          EXPECT_NE(std::string(e.what()).find("manifest.zshard\" is corrupt"), std::string::npos)
              << e.what();
          throw;
        }
      },
      IoError);
}

// A manifest with a valid checksum whose recorded slices contradict its
// layout (a writer bug, a hand edit) is refused; the recorded settings are
// compared with the run's.
TEST_F(CheckpointTest, InconsistentManifestIsRefusedAndSettingsAreCompared) {
  saveOnTwo();
  const std::string tag_dir = (dir_ / "t4").string();
  pb::CheckpointManifest m = readManifest(tag_dir);
  ASSERT_EQ(m.shards(1).slices(0).param(), slicesOf(manifestPlan(m), 1)[0].param());
  ModelInfo model;
  model.optimizer_summary = "optimizer: AdamW lr=0.02";
  const std::vector<std::string> diffs = settingDifferences(m, model);
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_NE(diffs[0].find("this run has \"optimizer: AdamW lr=0.02\""), std::string::npos);
  m.mutable_shards(1)->mutable_slices(0)->set_numel(1);
  writeFileAtomically(tag_dir + "/manifest.zshard", encodeManifest(m));
  try {
    readManifest(tag_dir);
    ADD_FAILURE() << "read an inconsistent manifest";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("is inconsistent: shard 1's slices do not match"),
              std::string::npos)
        << e.what();
  }
}

// Rank 0 saves alone (the classic `if rank == 0: save_checkpoint()` bug):
// it is told which rank never took part, and nothing is committed.
TEST_F(CheckpointTest, ARankThatNeverSavesIsNamed) {
  onThreads(1, [&](int, rendezvous::Store& store) {
    Rank r(store, 0, 1, 0.3f);
    auto plan = shard::ShardPlan::build({{{8}, DType::kFloat32}}, 2, 4);
    std::vector<float> buffer(plan.shardNumel() * 3);
    ShardState state = ShardState::whole(
        kernels::cpuBackend(),
        {buffer.data(), buffer.data() + plan.shardNumel(), buffer.data() + 2 * plan.shardNumel()},
        plan.shardNumel());
    ModelInfo model = modelInfo(*r.engine);
    model.names = {"w"};
    model.shapes = {{8}};
    rendezvous::PrefixStore op(store, "alone");
    try {
      save({&op, 0, 2, 200ms}, {dir_.string(), "t1", true, "", ""}, plan, model, state, {});
      ADD_FAILURE() << "saved without rank 1";
    } catch (const TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("rank(s) 1 did not reach the shard step"),
                std::string::npos)
          << e.what();
    }
    EXPECT_FALSE(fs::exists(dir_ / "latest"));
    EXPECT_FALSE(fs::exists(dir_ / "t1" / "manifest.zshard"));
  });
}

TEST_F(CheckpointTest, ReaderReadsOnlyTheBlocksItNeedsAndChecksEach) {
  fs::create_directories(dir_);
  std::vector<float> values(10000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(i);
  const std::string path = (dir_ / "f.bin").string();
  const ShardFileInfo info =
      writeShardFile(path, {{&kernels::cpuBackend(), 0, 10000, {values.data()}}}, 256, 0);
  EXPECT_EQ(info.bytes, 40000);
  EXPECT_EQ(info.block_digests.size(), 157u);  // ceil(40000 / 256)
  VerifiedShardReader reader(path, info);
  std::vector<float> got(64);
  reader.read(1000 * 4, 20 * 4, reinterpret_cast<char*>(got.data()));  // bytes 4000..4080
  EXPECT_EQ(got[0], 1000.f);
  EXPECT_EQ(got[19], 1019.f);
  EXPECT_EQ(reader.bytesRead(), 256);  // one block: 3840..4096
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(9000);
    f.put('\x55');
  }
  VerifiedShardReader fresh(path, info);
  fresh.read(0, 256, reinterpret_cast<char*>(got.data()));  // an intact block reads fine
  EXPECT_THROW(fresh.read(9000, 4, reinterpret_cast<char*>(got.data())), IoError);
  fs::resize_file(path, 39000);
  EXPECT_THROW(VerifiedShardReader(path, info), IoError);
}

}  // namespace
}  // namespace zshard::checkpoint
