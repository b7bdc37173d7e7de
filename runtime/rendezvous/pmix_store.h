#pragma once

#include "runtime/rendezvous/store.h"

namespace zshard::rendezvous {

// A Store over PMIx (srun --mpi=pmix, mpirun): no server, no port. Keys are
// prefixed "zshard/" (PLATFORM.md: short unprefixed keys intermittently went
// missing). set() is collective — it fences with every rank, so all ranks
// must call it the same number of times (Gloo's connectFullMesh does).
// get() looks the key up at each rank in turn until one published it.
// add() and remove() have no PMIx equivalent and throw Error: counters and
// hang reports need the TcpStore.
class PmixStore : public Store {
 public:
  PmixStore();
  void set(const std::string& key, const std::string& value) override;
  std::string get(const std::string& key, Millis timeout = kDefaultStoreTimeout) override;
  int64_t add(const std::string& key, int64_t delta) override;
  bool check(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, Millis timeout = kDefaultStoreTimeout) override;
  bool remove(const std::string& key) override;

 private:
  bool lookup(const std::string& key, std::string& value);
};

}  // namespace zshard::rendezvous
