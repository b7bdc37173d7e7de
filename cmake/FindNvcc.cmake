# Sets CMAKE_CUDA_COMPILER from the first nvcc found in CUDA_HOME, CUDA_PATH,
# /usr/local/cuda or PATH, unless the user chose one (or ZSHARD_WITH_CUDA=OFF).
option(ZSHARD_WITH_CUDA "Build CUDA kernels and the NCCL backend when a CUDA toolkit is found" ON)
if(ZSHARD_WITH_CUDA AND NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
  find_program(ZSHARD_NVCC nvcc
    HINTS ENV CUDA_HOME ENV CUDA_PATH /usr/local/cuda
    PATH_SUFFIXES bin)
  if(ZSHARD_NVCC)
    set(CMAKE_CUDA_COMPILER "${ZSHARD_NVCC}" CACHE FILEPATH "CUDA compiler")
  endif()
endif()
