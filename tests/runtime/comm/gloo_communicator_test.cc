// The Gloo communicator against sums computed in double: ranks as threads
// over a HashStore (logic, parameterised over world size and dtype), and
// as forked processes over a TcpStore (the real path, and a rank killed
// mid-collective).
#include "runtime/comm/gloo/gloo_communicator.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <cstring>
#include <thread>

#include "kernels/kernels.h"
#include "runtime/core/error.h"
#include "runtime/rendezvous/hash_store.h"
#include "runtime/rendezvous/tcp_store.h"
#include "tests/support/store_server.h"

namespace zshard::comm {
namespace {

using namespace std::chrono_literals;

// Small integers: exact in every dtype and in their sums.
float valueOf(int rank, int64_t i) {
  return static_cast<float>((rank * 7 + i * 3) % 11 - 5);
}

std::vector<char> fill(DType dtype, int rank, int64_t n) {
  std::vector<float> values(n);
  for (int64_t i = 0; i < n; ++i) values[i] = valueOf(rank, i);
  std::vector<char> out(n * dtypeSize(dtype));
  kernels::cast({values.data(), DType::kFloat32}, {out.data(), dtype}, n);
  return out;
}

float at(const std::vector<char>& buf, DType dtype, int64_t i) {
  float f;
  kernels::cast({buf.data() + i * dtypeSize(dtype), dtype}, {&f, DType::kFloat32}, 1);
  return f;
}

double sumOver(int ranks, int64_t i) {
  double s = 0;
  for (int r = 0; r < ranks; ++r) s += valueOf(r, i);
  return s;
}

// Runs fn(rank, communicator) on `ranks` threads sharing a HashStore.
void onThreads(int ranks, const std::function<void(int, Communicator&)>& fn) {
  rendezvous::HashStore store;
  std::vector<std::thread> threads;
  std::vector<std::string> errors(ranks);
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      try {
        GlooOptions options;
        options.timeout = 20s;
        auto comm = makeGlooCommunicator(store, r, ranks, options);
        fn(r, *comm);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < ranks; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
}

class GlooCollectives : public ::testing::TestWithParam<std::tuple<int, DType>> {};

TEST_P(GlooCollectives, ReduceScatterWithUnevenCounts) {
  const auto [ranks, dtype] = GetParam();
  // Uneven, including an empty chunk when there are several ranks.
  std::vector<int64_t> counts;
  for (int r = 0; r < ranks; ++r) counts.push_back(r == 1 ? 0 : 1000 + 37 * r);
  int64_t total = 0;
  std::vector<int64_t> offsets;
  for (int64_t c : counts) offsets.push_back(total), total += c;
  onThreads(ranks, [&, dtype = dtype, ranks = ranks](int rank, Communicator& comm) {
    std::vector<char> buf = fill(dtype, rank, total);
    comm.reduceScatter(buf.data(), dtype, counts)->wait(20s);
    for (int64_t i = offsets[rank]; i < offsets[rank] + counts[rank]; ++i) {
      if (at(buf, dtype, i) != sumOver(ranks, i)) throw Error("wrong sum at " + std::to_string(i));
    }
  });
}

TEST_P(GlooCollectives, AllGatherAllReduceBroadcastBarrier) {
  const auto [ranks, dtype] = GetParam();
  const std::vector<int64_t> counts = evenCounts(4099, ranks);
  onThreads(ranks, [&, dtype = dtype, ranks = ranks](int rank, Communicator& comm) {
    // allGather: chunk r comes from rank r.
    std::vector<char> mine = fill(dtype, rank, 4099), buf(mine.size(), 0);
    int64_t offset = 0;
    for (int r = 0; r < rank; ++r) offset += counts[r];
    std::memcpy(buf.data() + offset * dtypeSize(dtype), mine.data() + offset * dtypeSize(dtype),
                counts[rank] * dtypeSize(dtype));
    comm.allGather(buf.data(), dtype, counts)->wait(20s);
    int64_t i = 0;
    for (int r = 0; r < ranks; ++r) {
      for (int64_t k = 0; k < counts[r]; ++k, ++i) {
        if (at(buf, dtype, i) != valueOf(r, i))
          throw Error("allGather wrong at " + std::to_string(i));
      }
    }
    std::vector<char> all = fill(dtype, rank, 777);
    comm.allReduce(all.data(), dtype, 777)->wait(20s);
    for (int64_t j = 0; j < 777; ++j) {
      if (at(all, dtype, j) != sumOver(ranks, j))
        throw Error("allReduce wrong at " + std::to_string(j));
    }
    std::vector<char> b = fill(dtype, rank, 50);
    comm.broadcast(b.data(), dtype, 50, ranks - 1)->wait(20s);
    for (int64_t j = 0; j < 50; ++j) {
      if (at(b, dtype, j) != valueOf(ranks - 1, j)) throw Error("broadcast wrong");
    }
    comm.barrier()->wait(20s);
  });
}

INSTANTIATE_TEST_SUITE_P(RanksDtypes, GlooCollectives,
                         ::testing::Combine(::testing::Values(1, 2, 3, 4, 5),
                                            ::testing::Values(DType::kFloat32, DType::kFloat16,
                                                              DType::kBFloat16)));

TEST(GlooCommunicator, ManyCollectivesInFlightCompleteInOrder) {
  onThreads(3, [](int rank, Communicator& comm) {
    std::vector<std::vector<float>> bufs(20, std::vector<float>(300, float(rank + 1)));
    std::vector<std::shared_ptr<Work>> works;
    for (auto& b : bufs) works.push_back(comm.allReduce(b.data(), DType::kFloat32, 300));
    for (auto& w : works) w->wait(20s);
    for (auto& b : bufs) {
      if (b[0] != 6.f || b[299] != 6.f) throw Error("wrong allReduce");
    }
  });
}

TEST(GlooCommunicator, WrongCountsAreAnError) {
  rendezvous::HashStore store;
  auto comm = makeGlooCommunicator(store, 0, 1);
  std::vector<float> b(4);
  EXPECT_THROW(comm->reduceScatter(b.data(), DType::kFloat32, {2, 2}), Error);
  EXPECT_THROW(comm->broadcast(b.data(), DType::kFloat32, 4, 1), Error);
}

TEST(GlooCommunicator, ForkedRanksOverTcpStore) {
  auto [server, port] = testing::forkTcpStoreServer("tok");
  const int ranks = 4;
  const auto codes = testing::runRanks(
      ranks,
      [port = port](int rank) {
        rendezvous::TcpStore store("127.0.0.1", port, "tok", 10s);
        auto comm = makeGlooCommunicator(store, rank, ranks);
        std::vector<float> b(100000);
        for (int64_t i = 0; i < 100000; ++i) b[i] = valueOf(rank, i);
        comm->allReduce(b.data(), DType::kFloat32, 100000)->wait(30s);
        for (int64_t i = 0; i < 100000; ++i) {
          if (b[i] != sumOver(ranks, i)) return 2;
        }
        return 0;
      },
      60s);
  EXPECT_EQ(codes, std::vector<int>(ranks, 0));
}

// Rank 2 dies in the middle of a collective: the others fail within the
// timeout with an error naming the collective and its sequence number, and
// the hang report names the missing rank.
TEST(GlooCommunicator, KilledRankMakesOthersFailNamingTheCollective) {
  auto [server, port] = testing::forkTcpStoreServer("tok");
  const int ranks = 3;
  const auto t0 = std::chrono::steady_clock::now();
  const auto codes = testing::runRanks(
      ranks,
      [port = port](int rank) {
        rendezvous::TcpStore store("127.0.0.1", port, "tok", 10s);
        GlooOptions options;
        options.timeout = 3s;
        auto comm = makeGlooCommunicator(store, rank, ranks, options);
        std::vector<float> b(1000, 1.f);
        comm->allReduce(b.data(), DType::kFloat32, 1000)->wait(10s);  // #0 works
        if (rank == 2) raise(SIGKILL);                                // dies before #1
        try {
          comm->reduceScatter(b.data(), DType::kFloat32, evenCounts(1000, ranks))->wait(10s);
        } catch (const Error& e) {
          const std::string what = e.what();
          std::fprintf(stderr, "rank %d: %s\n", rank, what.c_str());
          if (what.find("reduceScatter #1 (1000 x fp32)") == std::string::npos) return 3;
          // A later call fails at once, naming the first failure.
          try {
            comm->barrier()->wait(1s);
          } catch (const Error& later) {
            return std::string(later.what()).find("broken") != std::string::npos ? 10 : 4;
          }
          return 5;
        }
        return 6;
      },
      60s);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(codes[0], 10);
  EXPECT_EQ(codes[1], 10);
  EXPECT_EQ(codes[2], 128 + SIGKILL);
  EXPECT_LT(seconds, 20.0);  // bounded by the 3 s timeout plus the report grace, not a hang
}

// A rank that never arrives (alive but stuck): the others time out and the
// report names it.
TEST(GlooCommunicator, StuckRankIsNamedInTheTimeout) {
  auto [server, port] = testing::forkTcpStoreServer("tok");
  const int ranks = 3;
  const auto codes = testing::runRanks(
      ranks,
      [port = port](int rank) {
        rendezvous::TcpStore store("127.0.0.1", port, "tok", 10s);
        GlooOptions options;
        options.timeout = 2s;
        auto comm = makeGlooCommunicator(store, rank, ranks, options);
        std::vector<float> b(10, 1.f);
        if (rank == 1) {
          std::this_thread::sleep_for(8s);  // "stuck in compute"
          return 0;
        }
        try {
          comm->allReduce(b.data(), DType::kFloat32, 10)->wait(30s);
        } catch (const TimeoutError& e) {
          const std::string what = e.what();
          std::fprintf(stderr, "rank %d: %s\n", rank, what.c_str());
          return what.find("allReduce #0") != std::string::npos &&
                         what.find("never reached it (behind, hung or dead): 1") !=
                             std::string::npos
                     ? 0
                     : 3;
        }
        return 6;
      },
      60s);
  EXPECT_EQ(codes, std::vector<int>(ranks, 0));
}

// Two communicators on one store number their collectives separately: rank
// 1 reaching the second one's allReduce #0 does not count as reaching the
// first one's (the hang report must still name rank 1).
TEST(GlooCommunicator, HangReportsAreKeptApartPerCommunicator) {
  rendezvous::HashStore store;
  const int ranks = 2;
  std::vector<std::string> reports(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      GlooOptions a, b;
      a.timeout = b.timeout = 2s;
      b.store_prefix = "gloo-other";
      auto first = makeGlooCommunicator(store, r, ranks, a);
      auto second = makeGlooCommunicator(store, r, ranks, b);
      std::vector<float> x(4, 1.f);
      try {
        // Rank 1 only joins the second communicator's collective.
        (r == 0 ? first : second)->allReduce(x.data(), DType::kFloat32, 4)->wait(30s);
      } catch (const TimeoutError& e) {
        reports[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_NE(reports[0].find("(communicator gloo)"), std::string::npos) << reports[0];
  EXPECT_NE(reports[0].find("never reached it (behind, hung or dead): 1"), std::string::npos)
      << reports[0];
  EXPECT_NE(reports[1].find("(communicator gloo-other)"), std::string::npos) << reports[1];
  EXPECT_NE(reports[1].find("never reached it (behind, hung or dead): 0"), std::string::npos)
      << reports[1];
}

}  // namespace
}  // namespace zshard::comm
