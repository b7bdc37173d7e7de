#include "launcher/slurm_launch.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/rendezvous/pmix_client.h"

namespace zshard::launcher {

void srunSelfIfAllocation(char** argv) {
  const char* job = std::getenv("SLURM_JOB_ID");
  const char* nodes = std::getenv("SLURM_JOB_NUM_NODES");
  if (job == nullptr || nodes == nullptr || std::getenv("SLURM_STEP_ID") != nullptr ||
      rendezvous::PmixClient::available() || std::atoi(nodes) < 2) {
    return;
  }
  std::vector<std::string> args = {"srun", std::string("--nodes=") + nodes, "--ntasks-per-node=1",
                                   "--mpi=pmix", "--kill-on-bad-exit=1"};
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  args.push_back(n > 0 ? std::string(self, static_cast<size_t>(n)) : argv[0]);
  for (char** a = argv + 1; *a != nullptr; ++a) args.push_back(*a);
  std::vector<char*> c_args;
  for (auto& s : args) c_args.push_back(s.data());
  c_args.push_back(nullptr);
  execvp("srun", c_args.data());
  throw Error(std::string("zlaunch: inside a ") + nodes +
              "-node Slurm allocation, but srun could not be run (" + std::strerror(errno) +
              "); run srun --ntasks-per-node=1 --mpi=pmix zlaunch ... yourself");
}

}  // namespace zshard::launcher
