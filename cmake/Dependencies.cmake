# Every third-party dependency is found here, once. Required ones stop the
# configure with a message saying how to get them; CUDA/NCCL are optional
# and switch the GPU parts on or off with one status line.

set(ZSHARD_MISSING_HINT "run scripts/install_deps.sh (Debian 12 / Ubuntu 24.04 packages)")

find_package(Threads REQUIRED)

find_package(Protobuf REQUIRED)
if(NOT Protobuf_PROTOC_EXECUTABLE)
  message(FATAL_ERROR "zshard: protoc not found; ${ZSHARD_MISSING_HINT}")
endif()

find_package(OpenSSL REQUIRED COMPONENTS Crypto)

find_package(PkgConfig REQUIRED)
pkg_check_modules(PMIX REQUIRED IMPORTED_TARGET pmix)

find_path(GLOO_INCLUDE_DIR gloo/config.h)
find_library(GLOO_LIBRARY gloo)
if(NOT GLOO_INCLUDE_DIR OR NOT GLOO_LIBRARY)
  message(FATAL_ERROR "zshard: Gloo not found (gloo/config.h, libgloo); ${ZSHARD_MISSING_HINT}")
endif()
add_library(zshard::gloo UNKNOWN IMPORTED)
set_target_properties(zshard::gloo PROPERTIES
  IMPORTED_LOCATION "${GLOO_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${GLOO_INCLUDE_DIR}")

find_package(GTest REQUIRED)

# --- CUDA and NCCL: optional ---------------------------------------------
set(ZSHARD_HAVE_CUDA OFF)
set(ZSHARD_HAVE_NCCL OFF)
set(ZSHARD_CUDA_ARCHS "80-real;90")  # sm_80, sm_90 and sm_90 PTX
if(ZSHARD_WITH_CUDA AND CMAKE_CUDA_COMPILER)
  set(CMAKE_CUDA_ARCHITECTURES ${ZSHARD_CUDA_ARCHS})
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  set(ZSHARD_HAVE_CUDA ON)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ENV NCCL_HOME ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
    HINTS ENV NCCL_HOME ${CUDAToolkit_LIBRARY_DIR} PATH_SUFFIXES lib lib64)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(ZSHARD_HAVE_NCCL ON)
    file(STRINGS "${NCCL_INCLUDE_DIR}/nccl.h" _nccl_lines REGEX "#define NCCL_(MAJOR|MINOR|PATCH) ")
    string(REGEX REPLACE ".*NCCL_MAJOR ([0-9]+).*NCCL_MINOR ([0-9]+).*NCCL_PATCH ([0-9]+).*"
      "\\1.\\2.\\3" ZSHARD_NCCL_HEADER_VERSION "${_nccl_lines}")
    add_library(zshard::nccl UNKNOWN IMPORTED)
    set_target_properties(zshard::nccl PROPERTIES
      IMPORTED_LOCATION "${NCCL_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}")
  endif()
  message(STATUS "zshard: CUDA ${CUDAToolkit_VERSION} ON (nvcc ${CMAKE_CUDA_COMPILER}, "
    "archs ${ZSHARD_CUDA_ARCHS}); NCCL ${ZSHARD_HAVE_NCCL} ${ZSHARD_NCCL_HEADER_VERSION}")
else()
  message(STATUS "zshard: CUDA OFF (no nvcc in CUDA_HOME, /usr/local/cuda/bin or PATH, "
    "or ZSHARD_WITH_CUDA=OFF): CPU-only build, GPU tests will be skipped")
endif()
