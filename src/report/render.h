// Shared helpers of the report renderers (SVG Gantt, HTML): escaping, the op-type palette, and the Gantt body.
#pragma once

#include <string>
#include <string_view>

#include "moirai/report.h"

namespace moirai::report_detail {

/// Escapes &, <, >, " and ' for XML/HTML text and attribute values.
std::string xml_escape(std::string_view text);

/// A stable colour (#rrggbb) for an operator type: a fixed table for common types, a hash of the name otherwise,
/// so one type has the same colour in every chart.
std::string type_colour(std::string_view type);

/// The Gantt chart as an <svg> element; `standalone` adds the XML declaration (gantt.svg) and omits it when
/// the SVG is inlined in HTML.
std::string gantt(const Plan& plan, bool standalone);

}  // namespace moirai::report_detail
