// PMIx adapter: PMIx types and calls stay in this file.
#include "runtime/rendezvous/pmix_client.h"

#include <pmix.h>

#include <cstdlib>
#include <cstring>

#include "runtime/core/error.h"

#define ZSHARD_CHECK_PMIX(call)                                                                    \
  do {                                                                                             \
    const pmix_status_t zshard_status = (call);                                                    \
    if (zshard_status != PMIX_SUCCESS) {                                                           \
      throw Error(std::string(#call) + " failed at " __FILE__ ":" + std::to_string(__LINE__) +     \
                  ": " + PMIx_Error_string(zshard_status) + " (PMIx " + PMIx_Get_version() + ")"); \
    }                                                                                              \
  } while (0)

namespace zshard::rendezvous {

namespace {

pmix_proc_t g_self;

// Job-level integer attribute (PMIX_JOB_SIZE, ...) or `fallback`.
int jobInt(const char* key, const pmix_proc_t& self, int fallback, bool node_scope = false) {
  pmix_proc_t target;
  PMIX_LOAD_PROCID(&target, self.nspace, node_scope ? self.rank : PMIX_RANK_WILDCARD);
  pmix_value_t* value = nullptr;
  if (PMIx_Get(&target, key, nullptr, 0, &value) != PMIX_SUCCESS || value == nullptr)
    return fallback;
  int out = fallback;
  switch (value->type) {
    case PMIX_UINT32: out = static_cast<int>(value->data.uint32); break;
    case PMIX_UINT16: out = value->data.uint16; break;
    case PMIX_INT: out = value->data.integer; break;
    case PMIX_UINT: out = static_cast<int>(value->data.uint); break;
    default: break;
  }
  PMIX_VALUE_RELEASE(value);
  return out;
}

}  // namespace

bool PmixClient::available() {
  return std::getenv("PMIX_RANK") != nullptr && std::getenv("PMIX_NAMESPACE") != nullptr;
}

PmixClient& PmixClient::instance() {
  static PmixClient* client = new PmixClient();  // finalised by atexit below
  return *client;
}

PmixClient::PmixClient() {
  ZSHARD_CHECK_PMIX(PMIx_Init(&g_self, nullptr, 0));
  std::atexit([] { PMIx_Finalize(nullptr, 0); });
  // PLATFORM.md: the rank comes from the proc PMIx_Init fills in.
  rank_ = static_cast<int>(g_self.rank);
  nspace_ = g_self.nspace;
  size_ = jobInt(PMIX_JOB_SIZE, g_self, 1);
  local_rank_ = jobInt(PMIX_LOCAL_RANK, g_self, 0, true);
  local_size_ = jobInt(PMIX_LOCAL_SIZE, g_self, 1);
  node_rank_ = jobInt(PMIX_NODEID, g_self, 0, true);
  node_count_ = jobInt(PMIX_NUM_NODES, g_self, 1);
}

void PmixClient::putCommitFence(const std::string& key, const std::string& value) {
  pmix_value_t v;
  PMIX_VALUE_CONSTRUCT(&v);
  v.type = PMIX_BYTE_OBJECT;
  v.data.bo.bytes = static_cast<char*>(std::malloc(value.size() + 1));
  std::memcpy(v.data.bo.bytes, value.data(), value.size());
  v.data.bo.size = value.size();
  const pmix_status_t put = PMIx_Put(PMIX_GLOBAL, key.c_str(), &v);
  PMIX_VALUE_DESTRUCT(&v);
  ZSHARD_CHECK_PMIX(put);
  ZSHARD_CHECK_PMIX(PMIx_Commit());
  pmix_info_t collect;
  bool yes = true;
  PMIX_INFO_LOAD(&collect, PMIX_COLLECT_DATA, &yes, PMIX_BOOL);
  pmix_proc_t all;
  PMIX_LOAD_PROCID(&all, g_self.nspace, PMIX_RANK_WILDCARD);
  const pmix_status_t fence = PMIx_Fence(&all, 1, &collect, 1);
  PMIX_INFO_DESTRUCT(&collect);
  ZSHARD_CHECK_PMIX(fence);
}

bool PmixClient::get(int owner, const std::string& key, std::string& out) {
  pmix_proc_t proc;
  PMIX_LOAD_PROCID(&proc, nspace_.c_str(), static_cast<pmix_rank_t>(owner));
  pmix_info_t optional;
  bool yes = true;
  PMIX_INFO_LOAD(&optional, PMIX_OPTIONAL, &yes, PMIX_BOOL);
  pmix_value_t* value = nullptr;
  const pmix_status_t rc = PMIx_Get(&proc, key.c_str(), &optional, 1, &value);
  PMIX_INFO_DESTRUCT(&optional);
  if (rc != PMIX_SUCCESS || value == nullptr) return false;
  const bool bytes = value->type == PMIX_BYTE_OBJECT;
  if (bytes) out.assign(value->data.bo.bytes, value->data.bo.size);
  PMIX_VALUE_RELEASE(value);
  return bytes;
}

}  // namespace zshard::rendezvous
