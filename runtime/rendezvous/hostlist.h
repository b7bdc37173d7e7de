#pragma once

#include <string>
#include <vector>

namespace zshard::rendezvous {

// Expands a Slurm hostlist ("gpu[01-03,07],login-[1-2]-ib,dgx5") into host
// names in order, keeping zero padding; several bracket groups in one name
// multiply out. Throws Error naming the malformed part.
std::vector<std::string> expandHostlist(const std::string& hostlist);

// Expands SLURM_TASKS_PER_NODE ("2(x3),1") into one count per node.
std::vector<int> expandTasksPerNode(const std::string& spec);

}  // namespace zshard::rendezvous
