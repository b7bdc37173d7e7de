// A worker for launcher tests: joins the job the way the runtime does
// (topology from the environment, the job store, a Gloo communicator),
// allreduces its rank, checks the sum, and prints one line. Options:
//   --fail-rank R --code C   rank R exits with code C before the allreduce
//   --fail-first-attempt R   rank R exits 3 when ZSHARD_RESTART_COUNT is 0
//   --sleep S                sleep S seconds first (to be signalled)
//   --intruder               rank 0 first tries the store with a wrong token
//   --stuck R --timeout S    rank R never joins the allreduce; the others time
//                            out after S seconds
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "runtime/comm/gloo/gloo_communicator.h"
#include "runtime/core/error.h"
#include "runtime/rendezvous/job_store.h"
#include "runtime/rendezvous/tcp_store.h"
#include "runtime/rendezvous/topology.h"

using namespace zshard;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  int fail_rank = -1, code = 0, fail_first = -1;
  double sleep_s = 0;
  bool intruder = false;
  int stuck = -1;
  double timeout_s = 60;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--fail-rank") fail_rank = std::atoi(argv[++i]);
    if (a == "--code") code = std::atoi(argv[++i]);
    if (a == "--fail-first-attempt") fail_first = std::atoi(argv[++i]);
    if (a == "--sleep") sleep_s = std::atof(argv[++i]);
    if (a == "--intruder") intruder = true;
    if (a == "--stuck") stuck = std::atoi(argv[++i]);
    if (a == "--timeout") timeout_s = std::atof(argv[++i]);
  }
  try {
    const rendezvous::Topology t = rendezvous::detectTopology();
    if (sleep_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(sleep_s));
    if (t.rank == fail_rank) {
      std::fprintf(stderr, "probe rank %d failing on purpose with code %d\n", t.rank, code);
      return code;
    }
    const char* restart = std::getenv("ZSHARD_RESTART_COUNT");
    if (t.rank == fail_first && restart != nullptr && std::string(restart) == "0") {
      std::fprintf(stderr, "probe rank %d failing its first attempt\n", t.rank);
      return 3;
    }
    if (intruder && t.rank == 0) {
      try {
        rendezvous::TcpStore bad(t.master_addr, t.master_port, "not-the-token", 5s);
        std::fprintf(stderr, "intruder was accepted\n");
        return 9;
      } catch (const AuthError& e) {
        std::printf("intruder refused: %s\n", e.what());
      }
    }
    rendezvous::JobStore job(t);
    comm::GlooOptions options;
    options.timeout =
        std::chrono::duration_cast<comm::Millis>(std::chrono::duration<double>(timeout_s));
    auto comm = comm::makeGlooCommunicator(job.store(), t.rank, t.world_size, options);
    if (t.rank == stuck) {
      std::this_thread::sleep_for(std::chrono::duration<double>(timeout_s * 5));
      return 0;
    }
    std::vector<float> v = {float(t.rank), 1.f};
    comm->allReduce(v.data(), DType::kFloat32, 2)->wait(60s);
    const float n = float(t.world_size);
    if (v[0] != n * (n - 1) / 2 || v[1] != n) {
      std::fprintf(stderr, "wrong allreduce: %g %g\n", v[0], v[1]);
      return 4;
    }
    comm->barrier()->wait(60s);
    std::printf("probe rank %d of %d local %d/%d node %d/%d source %s ok\n", t.rank, t.world_size,
                t.local_rank, t.local_size, t.node_rank, t.node_count, t.source.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "probe error: %s\n", e.what());
    return 1;
  }
}
