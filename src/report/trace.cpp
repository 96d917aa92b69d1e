// Chrome trace (Trace Event Format, opens in Perfetto and chrome://tracing). Each device is a process (pid =
// device id + 1) with three threads: tid 1 runs operators ("NAME"), tid 2 its send port ("NAME send"), tid 3 its
// receive port ("NAME recv"). Events are complete events ("ph":"X") with ts/dur in microseconds.
#include <nlohmann/json.hpp>

#include "moirai/report.h"

namespace moirai {

std::string trace_json(const Plan& plan) {
  using ojson = nlohmann::ordered_json;
  const CostTable& t = plan.table;
  const Schedule& s = plan.schedule;
  ojson events = ojson::array();
  auto meta = [&](const char* what, int pid, int tid, const std::string& name) {
    events.push_back({{"name", what}, {"ph", "M"}, {"pid", pid}, {"tid", tid}, {"args", {{"name", name}}}});
  };
  for (DeviceId d = 0; d < t.num_devices(); ++d) {
    const std::string& name = t.device_names[static_cast<size_t>(d)];
    const int pid = d + 1;
    meta("process_name", pid, 0, name);
    events.push_back({{"name", "process_sort_index"}, {"ph", "M"}, {"pid", pid}, {"tid", 0}, {"args", {{"sort_index", d}}}});
    meta("thread_name", pid, 1, name);
    meta("thread_name", pid, 2, name + " send");
    meta("thread_name", pid, 3, name + " recv");
    for (int tid = 1; tid <= 3; ++tid)
      events.push_back({{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", pid}, {"tid", tid}, {"args", {{"sort_index", tid}}}});
  }
  auto complete = [&](const std::string& name, const char* cat, DeviceId d, int tid, double start_ms, double end_ms,
                      ojson args) {
    events.push_back({{"name", name},
                      {"cat", cat},
                      {"ph", "X"},
                      {"pid", d + 1},
                      {"tid", tid},
                      {"ts", start_ms * 1000},
                      {"dur", (end_ms - start_ms) * 1000},
                      {"args", std::move(args)}});
  };
  for (OpId op = 0; op < t.num_ops(); ++op) {
    const auto i = static_cast<size_t>(op);
    ojson args{{"type", t.op_types[i]}, {"origin", i < t.op_origin.size() ? t.op_origin[i] : std::vector<std::string>{}}};
    if (i < t.flops.size() && t.flops[i] > 0) args["flops"] = t.flops[i];
    if (i < plan.parts.size() && !plan.parts[i].empty()) {
      for (const auto& p : plan.parts[i]) {
        ojson a = args;
        a["share"] = p.share;
        complete(t.op_names[i], "op", p.device, 1, p.start_ms, p.end_ms, std::move(a));
      }
    } else {
      complete(t.op_names[i], "op", plan.result.placement.device[i], 1, s.ops[i].start_ms, s.ops[i].end_ms,
               std::move(args));
    }
  }
  for (const auto& tr : s.transfers) {
    const std::string& name = t.data[static_cast<size_t>(tr.data)].name;
    ojson args{{"tensor", name},
               {"src", t.device_names[static_cast<size_t>(tr.src)]},
               {"dst", t.device_names[static_cast<size_t>(tr.dst)]},
               {"bytes", tr.bytes}};
    complete(name, "send", tr.src, 2, tr.start_ms, tr.end_ms, args);
    complete(name, "recv", tr.dst, 3, tr.start_ms, tr.end_ms, std::move(args));
  }
  ojson j;
  j["traceEvents"] = std::move(events);
  j["displayTimeUnit"] = "ms";
  j["otherData"] = {{"model", t.name}, {"cluster", t.cluster}, {"method", plan.method},
                    {"makespan_ms", s.makespan_ms}};
  return j.dump() + "\n";
}

}  // namespace moirai
