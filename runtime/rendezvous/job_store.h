#pragma once

#include <memory>

#include "runtime/rendezvous/store.h"
#include "runtime/rendezvous/topology.h"

namespace zshard::rendezvous {

class TcpStoreServer;

// The job's store as a worker sees it: under zlaunch a TcpStore client of
// node 0's controller (ZSHARD_STORE_ADDR, ZSHARD_JOB_TOKEN), viewed through
// this launch generation's prefix (ZSHARD_STORE_PREFIX); under PMIx without
// zlaunch, rank 0 serves a TcpStore on a free port with a fresh token and
// both go to the other ranks through PMIx; torchrun/Slurm variables: rank 0
// serves on MASTER_ADDR:MASTER_PORT with ZSHARD_JOB_TOKEN (required there)
// unless the address was shared another way (serveProcessJobStore); a
// single process gets an in-process store. Owns what it creates.
class JobStore {
 public:
  explicit JobStore(const Topology& topology);
  // The store rank 0 published as "host port token"; `server` is rank 0's
  // own (null elsewhere).
  JobStore(const std::string& published, std::unique_ptr<TcpStoreServer> server);
  ~JobStore();
  Store& store() { return *view_; }

 private:
  std::unique_ptr<TcpStoreServer> server_;
  std::unique_ptr<Store> client_;
  std::unique_ptr<Store> view_;
};

// The process's one JobStore (made from detectTopology() on first use), so
// that everything in a process — the training session, zshard.comm — shares
// one rendezvous (one PMIx exchange, one store server on rank 0). Lives
// until exit.
JobStore& processJobStore();

// Where the job already has a channel of its own that every rank reaches
// (torch's store under torchrun: MASTER_PORT is torch's, not zshard's),
// rank 0 serves the job store on a free port with `token` (a fresh one
// when empty) and returns "host port token" for that channel; then every
// rank, rank 0 too, joins it. Both must come before processJobStore()'s
// first use (else Error); call them from one thread.
std::string serveProcessJobStore(const std::string& token);
void joinProcessJobStore(const std::string& published);

}  // namespace zshard::rendezvous
