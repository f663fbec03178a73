// The console's charts as server-rendered SVG: no chart library, no script, and a page that
// prints. Styling is by class (console.css), since the CSP allows no inline style.

#include <algorithm>

#include <fmt/format.h>

#include "jobtrail/console.h"
#include "pages.h"
#include "jobtrail/view/job_view.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::console {
namespace {

constexpr int label_width = 280;
constexpr int plot_width = 900;
constexpr int row_height = 16;
constexpr int bar_height = 11;
constexpr int axis_height = 22;
constexpr std::size_t label_chars = 40;

/// A job ID cut to fit the label column, at a UTF-8 character boundary.
std::string short_label(const std::string& text) {
  if (text.size() <= label_chars) return text;
  std::size_t cut = label_chars - 1;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "…";
}

}  // namespace

std::string waterfall_svg(const std::vector<const JobRecord*>& jobs, Micros now) {
  if (jobs.empty()) return {};
  Micros start = jobs.front()->first_event_at;
  Micros end = start;
  const auto end_of = [now](const JobRecord& job) {
    return job.finished_at && is_final(job.state) ? *job.finished_at
           : job.finished_at && job.state == State::failed ? std::max(*job.finished_at, job.last_event_at)
                                                           : std::max(now, job.last_event_at);
  };
  for (const JobRecord* job : jobs) {
    start = std::min(start, job->first_event_at);
    end = std::max({end, end_of(*job), job->last_event_at});
  }
  const Micros span = std::max<Micros>(end - start, 1);
  const auto x = [&](Micros at) {
    return label_width + static_cast<double>(std::clamp<Micros>(at - start, 0, span)) * plot_width / static_cast<double>(span);
  };
  const int height = axis_height + static_cast<int>(jobs.size()) * row_height + 4;
  std::string svg;
  svg.reserve(jobs.size() * 420 + 2048);
  svg += fmt::format(R"(<svg class="waterfall-chart" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" )"
                     R"(viewBox="0 0 {} {}" role="img" aria-label="waterfall of {} jobs">)",
                     label_width + plot_width + 10, height, label_width + plot_width + 10, height, jobs.size());
  // The time axis: six ticks, each labelled with the time since the trace's first event.
  for (int tick = 0; tick <= 5; ++tick) {
    const Micros at = start + span * tick / 5;
    const double tx = x(at);
    svg += fmt::format(R"(<line class="tick" x1="{:.1f}" y1="{}" x2="{:.1f}" y2="{}"/>)", tx, axis_height - 4, tx, height);
    svg += fmt::format(R"(<text x="{:.1f}" y="{}" text-anchor="{}">+{}</text>)", tx, axis_height - 8,
                       tick == 0 ? "start" : tick == 5 ? "end" : "middle", escape_html(view::format_duration(at - start)));
  }
  int row = 0;
  for (const JobRecord* job_pointer : jobs) {
    const JobRecord& job = *job_pointer;
    const int y = axis_height + row * row_height;
    ++row;
    svg += fmt::format(R"(<g class="job-row"><a href="{}"><text class="label" x="4" y="{}">{}</text></a>)",
                       escape_html(job_url(job.job_id)), y + bar_height - 1, escape_html(short_label(job.job_id)));
    const auto bar = [&](const char* css_class, Micros from, Micros to, const std::string& title) {
      const double left = x(from);
      const double width = std::max(1.0, x(to) - left);
      svg += fmt::format(R"(<rect class="{}" x="{:.1f}" y="{}" width="{:.1f}" height="{}"><title>{}</title></rect>)",
                         css_class, left, y, width, bar_height, escape_html(title));
    };
    const Micros enqueued = job.enqueued_at.value_or(job.first_event_at);
    // Earlier attempts: from the job's first event to the latest attempt's enqueue.
    if (job.attempts > 1 && enqueued > job.first_event_at) {
      bar("retry", job.first_event_at, enqueued,
          fmt::format("{}: {} earlier attempts, {}", job.job_id, job.attempts - 1,
                      view::format_duration(enqueued - job.first_event_at)));
    }
    const Micros wait_end = job.started_at.value_or(job.finished_at.value_or(end_of(job)));
    if (wait_end > enqueued || !job.started_at) {
      bar("wait", enqueued, wait_end,
          fmt::format("{}: waited {}{}", job.job_id, view::format_duration(wait_end - enqueued), job.started_at ? "" : "+"));
    }
    if (job.started_at) {
      const bool ended = job.finished_at && *job.finished_at >= *job.started_at;
      const Micros run_end = ended ? *job.finished_at : end_of(job);
      const char* css_class = !ended                                                      ? "ongoing"
                              : job.state == State::failed || job.state == State::dead ? "failed"
                                                                                        : "run";
      bar(css_class, *job.started_at, run_end,
          fmt::format("{}: {} {}{} (attempt {})", job.job_id, to_string(job.state),
                      view::format_duration(run_end - *job.started_at), ended ? "" : "+", std::max(job.attempts, 1)));
    }
    svg += "</g>";
  }
  svg += "</svg>";
  return svg;
}

std::string throughput_svg(const std::vector<Slice>& slices, Micros slice_length) {
  constexpr int width = 264;
  constexpr int height = 64;
  std::int64_t most = 1;
  for (const Slice& slice : slices) most = std::max(most, slice.finished);
  const double bar_width = static_cast<double>(width) / static_cast<double>(std::max<std::size_t>(slices.size(), 1));
  std::string svg = fmt::format(
      R"(<svg class="throughput" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="finished and failed jobs over time">)",
      width, height + 1, width, height + 1);
  svg += fmt::format(R"(<line class="axis" x1="0" y1="{}" x2="{}" y2="{}"/>)", height, width, height);
  for (std::size_t i = 0; i < slices.size(); ++i) {
    const Slice& slice = slices[i];
    const double left = static_cast<double>(i) * bar_width;
    const double tall = static_cast<double>(slice.finished) * (height - 2) / static_cast<double>(most);
    const double red = static_cast<double>(slice.failed) * (height - 2) / static_cast<double>(most);
    const std::string title = fmt::format("{} +{}: {} finished, {} failed or dead", view::format_timestamp(slice.from),
                                          view::format_duration(slice_length), slice.finished, slice.failed);
    svg += fmt::format(R"(<g><title>{}</title><rect class="bar" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}"/>)",
                       escape_html(title), left + 1, height - tall, std::max(1.0, bar_width - 2), tall);
    if (slice.failed > 0) {
      svg += fmt::format(R"(<rect class="fail" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}"/>)", left + 1,
                         height - red, std::max(1.0, bar_width - 2), red);
    }
    svg += "</g>";
  }
  svg += "</svg>";
  return svg;
}

}  // namespace jobtrail::console
