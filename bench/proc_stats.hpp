// Server-side cost as Linux accounts it: CPU seconds and resident memory of a process, from /proc.
// A server may be several processes (nginx: master and worker): both figures sum the process and all its
// descendants.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace bench {

// Fields of /proc/PID/stat after the command name (which may contain spaces); field 3 is rest[0].
inline std::vector<std::string> stat_fields(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::vector<std::string> out;
  if (!std::getline(f, line)) return out;
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  while (rest >> field) out.push_back(field);
  return out;
}

// `pid` and every process below it.
inline std::vector<int> process_tree(int pid) {
  std::vector<int> tree{pid};
  std::vector<std::pair<int, int>> all;  // (pid, ppid)
  if (DIR* d = opendir("/proc")) {
    while (auto* e = readdir(d)) {
      int p = std::atoi(e->d_name);
      if (p <= 0) continue;
      auto f = stat_fields(p);
      if (f.size() > 1) all.emplace_back(p, std::atoi(f[1].c_str()));
    }
    closedir(d);
  }
  for (std::size_t i = 0; i < tree.size(); ++i)
    for (auto [p, pp] : all)
      if (pp == tree[i]) tree.push_back(p);
  return tree;
}

// utime + stime of one process, in seconds; -1 if unreadable.
inline double cpu_seconds_one(int pid) {
  auto f = stat_fields(pid);
  if (f.size() < 13) return -1;
  return static_cast<double>(std::stoull(f[11]) + std::stoull(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// utime + stime of `pid` and its descendants, in seconds.
inline double cpu_seconds(int pid) {
  double sum = 0;
  for (int p : process_tree(pid)) sum += std::max(0.0, cpu_seconds_one(p));
  return sum;
}

inline double self_cpu_seconds() { return cpu_seconds_one(static_cast<int>(getpid())); }

// VmRSS of `pid` and its descendants in KiB; -1 if unreadable.
inline long rss_kib(int pid) {
  long sum = -1;
  for (int p : process_tree(pid)) {
    std::ifstream f("/proc/" + std::to_string(p) + "/status");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("VmRSS:", 0) == 0) sum = std::max(0L, sum) + std::stol(line.substr(6));
  }
  return sum;
}

}  // namespace bench
