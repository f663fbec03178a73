// The console's charts as server-rendered SVG: no chart library, no script, and a page that
// prints. Styling is by class (console.css), since the CSP allows no inline style.

#include <algorithm>
#include <array>

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

/// The waterfall's kinds of bar, each drawn as one <path> per block, its class in console.css.
enum class Bar { retry, wait, run, failed, ongoing };
constexpr std::array<const char*, 5> bar_kinds = {"retry", "wait", "run", "failed", "ongoing"};

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
  constexpr int width = label_width + plot_width + 10;
  std::string html;
  html.reserve(jobs.size() * 300 + 2048);
  for (std::size_t first = 0; first < jobs.size(); first += rows_per_block) {
    const std::size_t last = std::min(jobs.size(), first + rows_per_block);
    // The first block carries the axis above its rows; the others start at their first row.
    const int top = first == 0 ? axis_height : 0;
    const int height = top + static_cast<int>(last - first) * row_height + (last == jobs.size() ? 4 : 0);
    html += fmt::format(R"(<div class="waterfall-block"><svg class="waterfall-chart" xmlns="http://www.w3.org/2000/svg" )"
                        R"(width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="waterfall of jobs {} to {} of {}">)",
                        width, height, width, height, first + 1, last, jobs.size());
    // The time axis: six ticks, labelled in the first block with the time since the trace's first event.
    for (int tick = 0; tick <= 5; ++tick) {
      const Micros at = start + span * tick / 5;
      const double tx = x(at);
      html += fmt::format(R"(<line class="tick" x1="{:.1f}" y1="{}" x2="{:.1f}" y2="{}"/>)", tx,
                          first == 0 ? axis_height - 4 : 0, tx, height);
      if (first == 0) {
        html += fmt::format(R"(<text x="{:.1f}" y="{}" text-anchor="{}">+{}</text>)", tx, axis_height - 8,
                            tick == 0 ? "start" : tick == 5 ? "end" : "middle", escape_html(view::format_duration(at - start)));
      }
    }
    // Bars of one kind are one <path> ("M x y h width v height h -width z" per bar): the browser
    // lays out a handful of elements per block instead of one <rect> with a <title> per bar.
    std::array<std::string, bar_kinds.size()> bars;
    std::string rows;
    for (std::size_t i = first; i < last; ++i) {
      const JobRecord& job = *jobs[i];
      const int y = top + static_cast<int>(i - first) * row_height;
      std::string title = job.job_id;
      const char* separator = ": ";
      const auto bar = [&](Bar kind, Micros from, Micros to, const std::string& what) {
        const double left = x(from);
        const double bar_width = std::max(1.0, x(to) - left);
        bars[static_cast<std::size_t>(kind)] +=
            fmt::format("M{:.1f} {}h{:.1f}v{}h-{:.1f}z", left, y, bar_width, bar_height, bar_width);
        title += separator;
        title += what;
        separator = "; ";
      };
      const Micros enqueued = job.enqueued_at.value_or(job.first_event_at);
      // Earlier attempts: from the job's first event to the latest attempt's enqueue.
      if (job.attempts > 1 && enqueued > job.first_event_at) {
        bar(Bar::retry, job.first_event_at, enqueued,
            fmt::format("{} earlier attempts, {}", job.attempts - 1, view::format_duration(enqueued - job.first_event_at)));
      }
      const Micros wait_end = job.started_at.value_or(job.finished_at.value_or(end_of(job)));
      if (wait_end > enqueued || !job.started_at) {
        bar(Bar::wait, enqueued, wait_end,
            fmt::format("waited {}{}", view::format_duration(wait_end - enqueued), job.started_at ? "" : "+"));
      }
      if (job.started_at) {
        const bool ended = job.finished_at && *job.finished_at >= *job.started_at;
        const Micros run_end = ended ? *job.finished_at : end_of(job);
        const Bar kind = !ended                                                             ? Bar::ongoing
                         : job.state == State::failed || job.state == State::dead ? Bar::failed
                                                                                   : Bar::run;
        bar(kind, *job.started_at, run_end,
            fmt::format("{} {}{} (attempt {})", to_string(job.state), view::format_duration(run_end - *job.started_at),
                        ended ? "" : "+", std::max(job.attempts, 1)));
      }
      // The row's link, over its whole width: its title tells the row's bars in words.
      rows += fmt::format(R"(<a class="job-row" href="{}"><title>{}</title><rect class="hit" x="0" y="{}" width="{}" height="{}"/>)"
                          R"(<text class="label" x="4" y="{}">{}</text></a>)",
                          escape_html(job_url(job.job_id)), escape_html(title), y, width, row_height, y + bar_height - 1,
                          escape_html(short_label(job.job_id)));
    }
    for (std::size_t kind = 0; kind < bar_kinds.size(); ++kind) {
      if (!bars[kind].empty()) html += fmt::format(R"(<path class="{}" d="{}"/>)", bar_kinds[kind], bars[kind]);
    }
    html += rows;
    html += "</svg></div>";
  }
  return html;
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
