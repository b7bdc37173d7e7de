// PMIx adapter: the version of the PMIx client library loaded at run time.
#include <pmix.h>

#include <string>

#include "runtime/core/build_info.h"

namespace zshard {

ComponentInfo pmixInfo() {
  // e.g. "OpenPMIx 4.2.2rc2 (PMIx Standard: 4.2, ...)": keep what precedes " (".
  const std::string full = PMIx_Get_version() != nullptr ? PMIx_Get_version() : "";
  return {"PMIx", true, full.substr(0, full.find(" (")), ""};
}

}  // namespace zshard
