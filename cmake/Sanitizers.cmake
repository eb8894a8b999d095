# Sanitizer and fuzzing builds (docs/SECURITY.md#fuzzing-and-sanitizers).
#
#   CLCA_SANITIZE  "address,undefined" or "thread": every target of the tree is
#                  compiled and linked with -fsanitize=<value>. LibTorch, OpenCV,
#                  gRPC and Abseil come from Debian and stay uninstrumented
#                  (with "thread", sanitizers/tsan_absl.cc annotates Abseil's
#                  locks).
#   CLCA_FUZZ      adds fuzz/ (libFuzzer targets, Clang only) and compiles the
#                  project with libFuzzer's coverage; implies address,undefined.
#   CLCA_PCH       compiles <torch/torch.h> once per tree and reuses it in every
#                  target that links LibTorch (Clang): the header alone is about
#                  a third of each translation unit's compile time.
#
# scripts/fuzz.sh, scripts/sanitize.sh and scripts/tsan.sh configure these
# trees; build them with Clang (CC=clang CXX=clang++).

set(CLCA_SANITIZE "" CACHE STRING "Sanitizers for every target: address,undefined or thread")
option(CLCA_FUZZ "Build the libFuzzer targets in fuzz/ (Clang)" OFF)
option(CLCA_PCH "Precompile <torch/torch.h> for the targets that link LibTorch (Clang)" OFF)

if(CLCA_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "CLCA_FUZZ needs Clang's libFuzzer: configure with CXX=clang++")
  endif()
  if(CLCA_SANITIZE STREQUAL "")
    set(CLCA_SANITIZE "address,undefined" CACHE STRING "" FORCE)
  elseif(NOT CLCA_SANITIZE MATCHES "address")
    message(FATAL_ERROR "CLCA_FUZZ runs under AddressSanitizer, not CLCA_SANITIZE=${CLCA_SANITIZE}")
  endif()
endif()

if(NOT CLCA_SANITIZE STREQUAL "")
  set(CLCA_SANITIZER_FLAGS -fsanitize=${CLCA_SANITIZE} -fno-omit-frame-pointer)
  if(CLCA_SANITIZE MATCHES "undefined")
    # Undefined behaviour stops the test or the fuzzer instead of being logged.
    list(APPEND CLCA_SANITIZER_FLAGS -fno-sanitize-recover=undefined)
  endif()
  add_compile_options(${CLCA_SANITIZER_FLAGS})
  add_link_options(${CLCA_SANITIZER_FLAGS})
  message(STATUS "Sanitizers: ${CLCA_SANITIZE}")
endif()
if(CLCA_PCH AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  # gRPC's targets add -pthread, and Clang refuses a precompiled header built
  # without it: every target gets it.
  add_compile_options(-pthread)
endif()
if(CLCA_FUZZ)
  # Coverage for libFuzzer in all project code; only the fuzz targets link
  # libFuzzer itself (-fsanitize=fuzzer), the other programs run as usual.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# Every target defined in `dir` and the directories below it.
function(clca_targets_below dir out)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub ${subdirs})
    clca_targets_below(${sub} more)
    list(APPEND targets ${more})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

# With CLCA_PCH, every library and program that links LibTorch reuses one
# precompiled <torch/torch.h>: one for libraries (-fPIC) and one for programs
# (-fPIE), since Clang refuses a header precompiled with the other.
function(clca_apply_pch)
  if(NOT CLCA_PCH)
    return()
  endif()
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(WARNING "CLCA_PCH is written for Clang; building without precompiled headers")
    return()
  endif()
  file(WRITE ${PROJECT_BINARY_DIR}/clca_pch_lib.cc "// Holds a precompiled <torch/torch.h>.\n")
  file(WRITE ${PROJECT_BINARY_DIR}/clca_pch_exe.cc "int main() { return 0; }\n")
  add_library(clca_pch_lib STATIC ${PROJECT_BINARY_DIR}/clca_pch_lib.cc)
  add_executable(clca_pch_exe ${PROJECT_BINARY_DIR}/clca_pch_exe.cc)
  foreach(holder clca_pch_lib clca_pch_exe)
    target_link_libraries(${holder} PRIVATE ${TORCH_LIBRARIES})
    target_precompile_headers(${holder} PRIVATE <torch/torch.h>)
    # Without the headers' timestamps, ccache can reuse what the header built.
    target_compile_options(${holder} PRIVATE -Xclang -fno-pch-timestamp)
  endforeach()
  clca_targets_below(${PROJECT_SOURCE_DIR} targets)
  set(count 0)
  foreach(target ${targets})
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "EXECUTABLE")
      set(holder clca_pch_exe)
    elseif(type MATCHES "^(STATIC|SHARED|MODULE|OBJECT)_LIBRARY$")
      set(holder clca_pch_lib)
    else()
      continue()
    endif()
    # Clang also refuses a header precompiled without OpenMP in a target
    # compiled with it (configure with -DCLCA_WITH_OPENMP=OFF).
    get_target_property(direct ${target} LINK_LIBRARIES)
    if(target MATCHES "^clca_pch_" OR "OpenMP::OpenMP_CXX" IN_LIST direct)
      continue()
    endif()
    clca_link_closure(${target} closure)
    if("torch" IN_LIST closure)
      target_precompile_headers(${target} REUSE_FROM ${holder})
      math(EXPR count "${count} + 1")
    endif()
  endforeach()
  message(STATUS "Precompiled <torch/torch.h> reused by ${count} targets")
endfunction()

# With CLCA_SANITIZE=thread, every program links sanitizers/tsan_absl.cc,
# which annotates Debian's uninstrumented absl::Mutex for ThreadSanitizer.
function(clca_apply_tsan_annotations)
  if(NOT CLCA_SANITIZE MATCHES "thread")
    return()
  endif()
  add_library(clca_tsan_absl OBJECT ${PROJECT_SOURCE_DIR}/sanitizers/tsan_absl.cc)
  target_link_libraries(clca_tsan_absl PUBLIC absl::synchronization absl::time ${CMAKE_DL_LIBS})
  clca_targets_below(${PROJECT_SOURCE_DIR} targets)
  foreach(target ${targets})
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "EXECUTABLE")
      target_link_libraries(${target} PRIVATE clca_tsan_absl)
    endif()
  endforeach()
endfunction()
