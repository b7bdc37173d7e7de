// Run under a PMIx server (mpirun -np N, srun --mpi=pmix -n N): each rank
// takes its place from PMIx, rank 0 serves a TcpStore whose address goes
// out through PMIx (no fixed port), and all ranks allreduce over Gloo.
// Exits 0 when every check passes; prints the reason otherwise.
#include <cstdio>
#include <memory>
#include <vector>

#include "runtime/comm/gloo/gloo_communicator.h"
#include "runtime/rendezvous/pmix_store.h"
#include "runtime/rendezvous/tcp_store.h"
#include "runtime/rendezvous/topology.h"

using namespace zshard;
using namespace std::chrono_literals;

int main() {
  try {
    const rendezvous::Topology t = rendezvous::detectTopology();
    if (t.source != "pmix") {
      std::fprintf(stderr, "expected the pmix source, got %s\n", t.source.c_str());
      return 2;
    }
    std::unique_ptr<rendezvous::TcpStoreServer> server;
    if (t.rank == 0)
      server = std::make_unique<rendezvous::TcpStoreServer>("pmix-test-token", "127.0.0.1");
    rendezvous::PmixStore pmix;
    pmix.set("store/" + std::to_string(t.rank),
             server ? "127.0.0.1:" + std::to_string(server->port()) : "");
    const std::string addr = pmix.get("store/0", 30s);
    const int port = std::stoi(addr.substr(addr.rfind(':') + 1));
    rendezvous::TcpStore store("127.0.0.1", port, "pmix-test-token", 30s);
    auto comm = comm::makeGlooCommunicator(store, t.rank, t.world_size);
    std::vector<float> v = {float(t.rank), 1.f, float(t.local_rank)};
    comm->allReduce(v.data(), DType::kFloat32, 3)->wait(30s);
    const float n = float(t.world_size);
    if (v[0] != n * (n - 1) / 2 || v[1] != n) {
      std::fprintf(stderr, "rank %d: wrong allreduce %g %g\n", t.rank, v[0], v[1]);
      return 3;
    }
    if (t.node_count == 1 && (t.local_size != t.world_size || v[2] != v[0])) {
      std::fprintf(stderr, "rank %d: local ranks inconsistent (local size %d)\n", t.rank,
                   t.local_size);
      return 4;
    }
    comm->barrier()->wait(30s);
    std::printf("rank %d of %d (local %d of %d, node %d of %d): OK\n", t.rank, t.world_size,
                t.local_rank, t.local_size, t.node_rank, t.node_count);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
