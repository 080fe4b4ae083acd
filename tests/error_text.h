// errorText: the message of the exception a callable throws, for checking that errors name
// what went wrong (a key, a file, a flag).
#pragma once

#include <string>

namespace sfn::test {

// The what() of the `Error` that `f` throws, or "(no error)" if it returns normally.
template <typename Error, typename F>
std::string errorText(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace sfn::test
