# Every dependency is a Debian 12 package (scripts/install-deps.sh), except SentencePiece,
# which install-deps.sh rebuilds from Debian's source package against the system protobuf:
# Debian's binary bundles protobuf 3.14 and crashes any process that also loads LibTorch.
find_package(Threads REQUIRED)
find_package(spdlog REQUIRED CONFIG)
find_package(nlohmann_json 3.11 REQUIRED CONFIG)
# Torch first: its Caffe2 config mis-handles a gflags target that RocksDB's config created.
find_package(Torch REQUIRED CONFIG)
find_package(RocksDB REQUIRED CONFIG)
find_package(CLI11 REQUIRED CONFIG)
find_package(Boost 1.81 REQUIRED CONFIG)  # Beast and Asio are header-only
find_package(OpenSSL 3 REQUIRED)  # libcrypto: SHA-256 and HMAC for dataset snapshots

set(_spm_prefix "${SELFFEED_DEPS_PREFIX}/sentencepiece")
find_library(SELFFEED_SPM_LIBRARY NAMES sentencepiece PATHS "${_spm_prefix}/lib" NO_DEFAULT_PATH)
find_library(SELFFEED_SPM_TRAIN_LIBRARY NAMES sentencepiece_train PATHS "${_spm_prefix}/lib" NO_DEFAULT_PATH)
find_path(SELFFEED_SPM_INCLUDE_DIR sentencepiece_processor.h PATHS "${_spm_prefix}/include" NO_DEFAULT_PATH)
if(NOT SELFFEED_SPM_LIBRARY OR NOT SELFFEED_SPM_TRAIN_LIBRARY OR NOT SELFFEED_SPM_INCLUDE_DIR)
  message(FATAL_ERROR "SentencePiece rebuilt against the system protobuf was not found in "
    "${_spm_prefix}. Run scripts/install-deps.sh (or set SELFFEED_DEPS_PREFIX).")
endif()
find_package(Protobuf REQUIRED)
add_library(selffeed_sentencepiece INTERFACE)
target_include_directories(selffeed_sentencepiece SYSTEM INTERFACE "${SELFFEED_SPM_INCLUDE_DIR}")
target_link_libraries(selffeed_sentencepiece INTERFACE
  "${SELFFEED_SPM_TRAIN_LIBRARY}" "${SELFFEED_SPM_LIBRARY}" protobuf::libprotobuf)
# Binaries find the rebuilt library (not Debian's same-soname one) through their RUNPATH.
set(CMAKE_BUILD_RPATH "${_spm_prefix}/lib")
