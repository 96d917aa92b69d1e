// Two network namespaces joined by a veth pair (10.77.0.2 and 10.77.0.3), the closest this machine gets to two
// hosts; each end can be shaped with tc's tbf qdisc. Removed (namespaces, and so the veth) on destruction.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace moirai::runtest {

class NetnsPair {
 public:
  /// `tag` keeps names unique per process; check ok() / error() before use.
  explicit NetnsPair(const std::string& tag) {
    const std::string id = tag + std::to_string(::getpid() % 100000);
    a_ = "moirai-" + id + "-a";
    b_ = "moirai-" + id + "-b";
    const std::string va = "mva" + id, vb = "mvb" + id;
    veth_a_ = va;
    veth_b_ = vb;
    if (!sh("ip netns add " + a_, "ip netns add")) return;
    created_a_ = true;
    if (!sh("ip netns add " + b_, "ip netns add")) return;
    created_b_ = true;
    ok_ = sh("ip link add " + va + " type veth peer name " + vb, "ip link add veth") &&
          sh("ip link set " + va + " netns " + a_, "ip link set netns") &&
          sh("ip link set " + vb + " netns " + b_, "ip link set netns") &&
          sh(in_a("ip addr add 10.77.0.2/24 dev " + va), "ip addr add") &&
          sh(in_b("ip addr add 10.77.0.3/24 dev " + vb), "ip addr add") &&
          sh(in_a("ip link set " + va + " up"), "ip link set up") && sh(in_b("ip link set " + vb + " up"), "ip link set up") &&
          sh(in_a("ip link set lo up"), "ip link set lo up") && sh(in_b("ip link set lo up"), "ip link set lo up");
  }
  ~NetnsPair() {
    // A veth that never reached its namespace stays in ours: delete it by name (an error when it is gone).
    if (!veth_a_.empty()) std::system(("ip link del " + veth_a_ + " 2>/dev/null").c_str());
    if (created_a_) std::system(("ip netns del " + a_ + " 2>/dev/null").c_str());
    if (created_b_) std::system(("ip netns del " + b_ + " 2>/dev/null").c_str());
  }
  NetnsPair(const NetnsPair&) = delete;
  NetnsPair& operator=(const NetnsPair&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }
  std::string in_a(const std::string& cmd) const { return "ip netns exec " + a_ + " " + cmd; }
  std::string in_b(const std::string& cmd) const { return "ip netns exec " + b_ + " " + cmd; }
  /// Shapes both directions with a token bucket (tc tbf) at `rate` (e.g. "1gbit").
  bool shape(const std::string& rate) {
    return sh(in_a("tc qdisc replace dev " + veth_a_ + " root tbf rate " + rate + " burst 256kb latency 100ms"), "tc") &&
           sh(in_b("tc qdisc replace dev " + veth_b_ + " root tbf rate " + rate + " burst 256kb latency 100ms"), "tc");
  }

 private:
  bool sh(const std::string& cmd, const std::string& what) {
    if (std::system((cmd + " >/dev/null 2>&1").c_str()) == 0) return true;
    error_ = what + " failed (" + cmd + ")";
    return false;
  }
  std::string a_, b_, veth_a_, veth_b_, error_;
  bool created_a_ = false, created_b_ = false, ok_ = false;
};

}  // namespace moirai::runtest
