#pragma once

#include "launcher/cli.h"
#include "launcher/node_rendezvous.h"

namespace zshard::launcher {

// One node's controller: starts this node's workers, prefixes and logs their
// output, and watches them and the job store. The first worker anywhere that
// exits non-zero or dies by a signal stops every worker on every node
// (SIGTERM, SIGKILL after the grace period); its controller prints ONE
// root-cause line (rank, node, exit code or signal, last stderr lines).
// SIGINT/SIGTERM/SIGUSR1/SIGUSR2 are forwarded to the workers; SIGINT and
// SIGTERM then stop the job. With max_restarts the whole job restarts under
// a new store prefix. Node 0 stays up until every node is done (it serves
// the store). Returns zlaunch's exit code.
int runController(const LaunchOptions& options, NodePlan& plan);

// The workers this node starts by default: one per visible GPU, else 1.
int defaultLocalSize();

}  // namespace zshard::launcher
