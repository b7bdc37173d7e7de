// Gloo adapter: Gloo's types stay in this file.
#include "runtime/comm/gloo/gloo_communicator.h"

#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

#include <numeric>

#include "kernels/kernels.h"
#include "runtime/comm/collective_runner.h"
#include "runtime/core/error.h"
#include "runtime/rendezvous/store.h"

namespace zshard::comm {

namespace {

// Gloo's rendezvous store interface over a zshard Store.
class GlooStoreAdapter : public gloo::rendezvous::Store {
 public:
  GlooStoreAdapter(rendezvous::Store& store, Millis timeout) : store_(store), timeout_(timeout) {}
  void set(const std::string& key, const std::vector<char>& data) override {
    store_.set(key, std::string(data.begin(), data.end()));
  }
  std::vector<char> get(const std::string& key) override {
    const std::string value = store_.get(key, timeout_);
    return {value.begin(), value.end()};
  }
  void wait(const std::vector<std::string>& keys) override { store_.wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const Millis& timeout) override {
    store_.wait(keys, timeout);
  }

 private:
  rendezvous::Store& store_;
  Millis timeout_;
};

constexpr uint64_t kSlotPrefix = 0x7a;

class GlooCommunicator : public Communicator {
 public:
  GlooCommunicator(rendezvous::Store& store, int rank, int size, const GlooOptions& options)
      : rank_(rank),
        size_(size),
        timeout_(options.timeout),
        runner_(&store, options.store_prefix, rank, size, options.timeout) {
    gloo::transport::tcp::attr attr(options.hostname.c_str());
    auto device = gloo::transport::tcp::CreateDevice(attr);
    context_ = std::make_shared<gloo::rendezvous::Context>(rank, size);
    context_->setTimeout(options.timeout);
    rendezvous::PrefixStore prefixed(store, options.store_prefix);
    GlooStoreAdapter adapter(prefixed, options.timeout);
    try {
      context_->connectFullMesh(adapter, device);
    } catch (const gloo::Exception& e) {
      throw CommError("Gloo could not connect rank " + std::to_string(rank) + " to its " +
                      std::to_string(size - 1) + " peers: " + e.what());
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  std::shared_ptr<Work> reduceScatter(void* buffer, DType dtype,
                                      std::vector<int64_t> counts) override {
    checkCounts(counts, "reduceScatter");
    return runner_.enqueue("reduceScatter", total(counts), dtype, [=, seq = nextSlot()] {
      ringReduceScatter(static_cast<char*>(buffer), dtype, counts, seq);
    });
  }

  std::shared_ptr<Work> allGather(void* buffer, DType dtype, std::vector<int64_t> counts) override {
    checkCounts(counts, "allGather");
    return runner_.enqueue("allGather", total(counts), dtype, [=, seq = nextSlot()] {
      ringAllGather(static_cast<char*>(buffer), dtype, counts, seq);
    });
  }

  std::shared_ptr<Work> allReduce(void* buffer, DType dtype, int64_t count) override {
    const std::vector<int64_t> counts = evenCounts(count, size_);
    return runner_.enqueue("allReduce", count, dtype, [=, seq = nextSlot()] {
      ringReduceScatter(static_cast<char*>(buffer), dtype, counts, seq);
      ringAllGather(static_cast<char*>(buffer), dtype, counts, seq + 1);
    });
  }

  std::shared_ptr<Work> broadcast(void* buffer, DType dtype, int64_t count, int root) override {
    if (root < 0 || root >= size_) {
      throw Error("broadcast: " +
                  expectedGot("root in 0.." + std::to_string(size_ - 1), std::to_string(root)));
    }
    return runner_.enqueue("broadcast", count, dtype, [=, seq = nextSlot()] {
      gloo::BroadcastOptions opts(context_);
      opts.setOutput(static_cast<char*>(buffer), count * dtypeSize(dtype));
      opts.setRoot(root);
      opts.setTag(static_cast<uint32_t>(seq));
      opts.setTimeout(timeout_);
      translate([&] { gloo::broadcast(opts); });
    });
  }

  std::shared_ptr<Work> barrier() override {
    return runner_.enqueue("barrier", 0, DType::kFloat32, [=, seq = nextSlot()] {
      gloo::BarrierOptions opts(context_);
      opts.setTag(static_cast<uint32_t>(seq));
      opts.setTimeout(timeout_);
      translate([&] { gloo::barrier(opts); });
    });
  }

 private:
  // Two slots per call (allReduce uses both); identical on every rank
  // because every rank issues the same sequence of calls.
  uint64_t nextSlot() { return (next_slot_ += 2); }

  void checkCounts(const std::vector<int64_t>& counts, const char* what) const {
    if (static_cast<int>(counts.size()) != size_) {
      throw Error(std::string(what) + ": " +
                  expectedGot(std::to_string(size_) + " counts (one per rank)",
                              std::to_string(counts.size())));
    }
  }

  static int64_t total(const std::vector<int64_t>& counts) {
    return std::accumulate(counts.begin(), counts.end(), int64_t{0});
  }

  // Runs fn, turning Gloo's exceptions into ours (a Gloo timeout is ours too).
  template <typename F>
  static void translate(F&& fn) {
    try {
      fn();
    } catch (const gloo::IoException& e) {
      const std::string what = e.what();
      if (what.find("Timed out") != std::string::npos) throw TimeoutError(what);
      throw CommError(what);
    } catch (const gloo::Exception& e) {
      throw CommError(e.what());
    }
  }

  // One ring step: send chunk `send` to the next rank while receiving the
  // previous rank's chunk `recv` into `scratch` (or in place).
  void ringStep(char* buffer, const std::vector<int64_t>& offsets,
                const std::vector<int64_t>& bytes, int send, int recv, char* scratch,
                uint64_t slot) {
    const int next = (rank_ + 1) % size_, prev = (rank_ + size_ - 1) % size_;
    auto out = context_->createUnboundBuffer(buffer + offsets[send], bytes[send]);
    auto in =
        context_->createUnboundBuffer(scratch ? scratch : buffer + offsets[recv], bytes[recv]);
    const uint64_t s = gloo::Slot::build(kSlotPrefix, slot);
    if (bytes[recv] > 0) in->recv(prev, s);
    if (bytes[send] > 0) out->send(next, s);
    translate([&] {
      if (bytes[recv] > 0 && !in->waitRecv(timeout_))
        throw TimeoutError("Timed out receiving from rank " + std::to_string(prev));
      if (bytes[send] > 0 && !out->waitSend(timeout_))
        throw TimeoutError("Timed out sending to rank " + std::to_string(next));
    });
  }

  void layout(DType dtype, const std::vector<int64_t>& counts, std::vector<int64_t>& offsets,
              std::vector<int64_t>& bytes) const {
    int64_t at = 0;
    for (int64_t c : counts) {
      offsets.push_back(at);
      bytes.push_back(c * static_cast<int64_t>(dtypeSize(dtype)));
      at += bytes.back();
    }
  }

  // Step s: send chunk (rank-1-s), receive chunk (rank-2-s) and add it in;
  // after size-1 steps this rank's chunk holds the full sum.
  void ringReduceScatter(char* buffer, DType dtype, const std::vector<int64_t>& counts,
                         uint64_t slot) {
    if (size_ == 1) return;
    std::vector<int64_t> offsets, bytes;
    layout(dtype, counts, offsets, bytes);
    std::vector<char> scratch(*std::max_element(bytes.begin(), bytes.end()));
    for (int s = 0; s < size_ - 1; ++s) {
      const int send = (rank_ - 1 - s + 2 * size_) % size_,
                recv = (rank_ - 2 - s + 2 * size_) % size_;
      ringStep(buffer, offsets, bytes, send, recv, scratch.data(), slot);
      kernels::accumulate({buffer + offsets[recv], dtype}, {scratch.data(), dtype}, counts[recv]);
    }
  }

  // Step s: send chunk (rank-s), receive chunk (rank-1-s) in place.
  void ringAllGather(char* buffer, DType dtype, const std::vector<int64_t>& counts, uint64_t slot) {
    if (size_ == 1) return;
    std::vector<int64_t> offsets, bytes;
    layout(dtype, counts, offsets, bytes);
    for (int s = 0; s < size_ - 1; ++s) {
      const int send = (rank_ - s + size_) % size_, recv = (rank_ - 1 - s + 2 * size_) % size_;
      ringStep(buffer, offsets, bytes, send, recv, nullptr, slot);
    }
  }

  int rank_, size_;
  Millis timeout_;
  std::shared_ptr<gloo::rendezvous::Context> context_;
  uint64_t next_slot_ = 0;
  CollectiveRunner runner_;  // last: its thread stops before the context goes
};

}  // namespace

std::unique_ptr<Communicator> makeGlooCommunicator(rendezvous::Store& store, int rank, int size,
                                                   const GlooOptions& options) {
  return std::make_unique<GlooCommunicator>(store, rank, size, options);
}

}  // namespace zshard::comm
