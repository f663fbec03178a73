#pragma once
// Each page of the console from the store, as HTML for the layout's <main>. No HTTP and no
// authentication here: console.cpp routes and guards.

#include <string>
#include <utility>
#include <vector>

#include "jobtrail/store.h"

namespace jobtrail::console {

using Params = std::vector<std::pair<std::string, std::string>>;

struct Page {
  int status = 200;
  std::string title;
  std::string body;   ///< the inside of <main>, also what a live refresh fetches
  bool live = false;  ///< it shows running things: the script refreshes it
};

/// One class's finished jobs (bars) and failures (their red part) per time slice.
struct Slice {
  Micros from = 0;
  std::int64_t finished = 0;
  std::int64_t failed = 0;  ///< failed or dead
};

struct ClassSeries {
  std::string job;
  std::int64_t finished = 0;
  std::int64_t failed = 0;
  std::vector<Slice> slices;
};

/// The overview's throughput chart: the slices' length (whole tally buckets), and per class the
/// jobs first seen in each slice of the window ending with the current bucket, from
/// Store::tally (a few hundred kept counts for a day, whatever the store holds).
struct Throughput {
  Micros slice_length = 0;
  std::vector<ClassSeries> classes;
};
/// `window` rounded up to `slice_count` whole buckets, ending with the bucket `now` falls in.
Throughput throughput(Store& store, Micros window, int slice_count, Micros now);

Page overview_page(Store& store, const Params& params, Micros now);
Page job_page(Store& store, const std::string& job_id, Micros now);
Page trace_page(Store& store, const std::string& correlation_id, Micros now);
/// The ls filters with paging; `entity` set: the entity page (its jobs, no form).
Page search_page(Store& store, const Params& params, Micros now, const std::string& entity = "");
/// The blast radius: the entities the jobs of the impact filters (`jobtrail impact`) touched.
Page impact_page(Store& store, const Params& params, Micros now);
Page checks_page(Store& store);
Page check_page(Store& store, const std::string& check);
/// A page that says what went wrong; `link_url`, when given, is offered as the way on.
Page problem_page(int status, const std::string& heading, const std::string& message, const std::string& link_url = "",
                  const std::string& link_text = "");

/// A trace's waterfall and tree come in blocks of this many jobs, each block its own <svg> or
/// <table> in a box with `content-visibility: auto` (console.css, whose intrinsic sizes assume
/// this count), so the browser lays out only the blocks near the view: a 5,000-job trace took
/// 2.1 s to load in headless Chromium as one table and one SVG of 10,500 <rect>s, most of it
/// the table's layout (docs/console.md, "Speed").
constexpr std::size_t rows_per_block = 200;

/// The trace's waterfall: one row per job of `jobs` (in the tree's order), bars for earlier
/// attempts, waiting and running, on one time axis; each row a link to its job whose title tells
/// its bars in words. Blocks of rows_per_block rows, each a <div class="waterfall-block"> holding
/// an SVG whose bars of one kind are one <path>; every text escaped.
std::string waterfall_svg(const std::vector<const JobRecord*>& jobs, Micros now);

/// A class's series as a small bar chart.
std::string throughput_svg(const std::vector<Slice>& slices, Micros slice_length);

}  // namespace jobtrail::console
