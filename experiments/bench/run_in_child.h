// runInChild: runs one benchmark measurement in a forked child and returns its JSON.
//
// A fresh process per measurement makes each peak RSS its own (nothing left over in the
// allocator or VmHWM from an earlier run). Fork before the parent touches torch: libgomp is
// not fork-safe once an OpenMP team exists. The child exits with _exit so no parent state
// (atexit handlers, stdio buffers) runs twice.
#pragma once

#include "sfn/core/error.h"

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>

namespace sfn::bench {

inline nlohmann::json runInChild(const std::function<nlohmann::json()>& body) {
  using Json = nlohmann::json;
  std::fflush(nullptr);
  int fds[2];
  SFN_ENFORCE(::pipe(fds) == 0, sfn::IoError, "pipe: ", std::strerror(errno));
  const pid_t pid = ::fork();
  SFN_ENFORCE(pid >= 0, sfn::IoError, "fork: ", std::strerror(errno));
  if (pid == 0) {
    ::close(fds[0]);
    std::string text;
    int code = 0;
    try {
      text = body().dump();
    } catch (const std::exception& e) {
      text = Json{{"error", e.what()}}.dump();
      code = 1;
    }
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fds[1], text.data() + done, text.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::close(fds[1]);
    ::_exit(code);
  }
  ::close(fds[1]);
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (text.empty()) return Json{{"error", "child died without a result"}, {"status", status}};
  return Json::parse(text);
}

}  // namespace sfn::bench
