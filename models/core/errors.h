// Messages of the exceptions LibTorch throws, for the statuses that replace
// them at the library's boundary.
#pragma once

#include <exception>
#include <string>

namespace clca {

// The message of an exception thrown by LibTorch, without its C++ backtrace.
std::string ExceptionMessage(const std::exception& e);

}  // namespace clca
