#pragma once
/// \file
/// The tree of a trace: its jobs in drawing order under the job that enqueued them, with how
/// each relates to its parent (in this trace, another one, none, itself, a cycle). `trace`
/// draws it, and its JSON (and GET /v1/traces/ID, through trace_documents()) follows the same
/// order, so the CLI and the HTTP API cannot disagree about a tree.

#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "jobtrail/store.h"

namespace jobtrail::view {

// Beyond this depth the tree lines stop growing and the depth is shown as a number: a
// 2,000-deep chain otherwise pads every line of the table to 6,000 columns.
inline constexpr std::size_t max_drawn_depth = 16;
// Parents outside the trace are looked up one by one (an index look-up each); past this many
// distinct ones the rest are reported without a look-up.
inline constexpr std::size_t max_parent_lookups = 20;
// Members of a parent cycle named in its flag; longer cycles are summarised.
inline constexpr std::size_t max_cycle_names = 6;

/// How a job relates to its parent, as trace reports it.
enum class ParentLink { none, in_trace, other_trace, elsewhere, not_recorded, not_looked_up, self, cycle };

inline std::string_view link_name(ParentLink link) {
  switch (link) {
    case ParentLink::none: return "none";
    case ParentLink::in_trace: return "in_trace";
    case ParentLink::other_trace: return "other_trace";
    case ParentLink::elsewhere: return "no_trace";
    case ParentLink::not_recorded: return "not_recorded";
    case ParentLink::not_looked_up: return "not_looked_up";
    case ParentLink::self: return "self";
    case ParentLink::cycle: return "cycle";
  }
  return "none";
}

/// One job in drawing order, with what the tree needs to draw it.
struct TreeLine {
  const JobRecord* job = nullptr;
  std::size_t depth = 0;
  std::string prefix;  ///< "│  ├─ " and the like; empty for roots. No job: a note of hidden jobs
  ParentLink link = ParentLink::none;
  std::string parent_trace;  ///< the parent's correlation ID when it is in another trace
  std::string cycle;         ///< for the job a cycle is drawn from: its members
  std::size_t hidden_below = 0;  ///< descendants not drawn (--depth, --width)
  std::string hidden_prefix;     ///< where the "hidden" note goes
};

/// What the parents outside the trace turned out to be.
struct OutsideParent {
  ParentLink link = ParentLink::not_recorded;
  std::string correlation_id;
};

struct TreeLimits {
  std::optional<std::size_t> depth;  ///< deepest level drawn (0: roots only)
  std::optional<std::size_t> width;  ///< children drawn per job
};

/// Orders the jobs depth-first under their parents, each exactly once whatever the events
/// claim. A job whose parent is not in this trace is a root; so is a self-parent. Jobs on a
/// parent cycle have no root: each cycle is drawn from its oldest member, which is flagged.
/// Iterative, so a chain of any depth cannot overflow the stack.
class TreeBuilder {
 public:
  explicit TreeBuilder(const std::vector<JobRecord>& jobs, TreeLimits limits = {}) : jobs_(jobs), limits_(limits) {
    for (std::size_t i = 0; i < jobs_.size(); ++i) index_.emplace(jobs_[i].job_id, i);
    for (const JobRecord& job : jobs_) {
      if (has_parent_here(job)) children_[job.parent_job_id].push_back(&job);
    }
  }

  std::vector<TreeLine> lines(const std::map<std::string, OutsideParent>& outside) {
    for (const JobRecord& job : jobs_) {
      if (has_parent_here(job)) continue;
      TreeLine root{&job, 0, "", ParentLink::none, "", "", 0, ""};
      if (job.parent_job_id == job.job_id) {
        root.link = ParentLink::self;
      } else if (!job.parent_job_id.empty()) {
        const auto found = outside.find(job.parent_job_id);
        root.link = found == outside.end() ? ParentLink::not_looked_up : found->second.link;
        if (found != outside.end()) root.parent_trace = found->second.correlation_id;
      }
      draw_from(std::move(root));
    }
    // Whatever is left hangs off a parent cycle.
    for (const JobRecord& job : jobs_) {
      if (drawn_.contains(job.job_id)) continue;
      std::vector<const JobRecord*> cycle = cycle_through(job);
      const JobRecord* entry = *std::min_element(cycle.begin(), cycle.end(), [this](const auto* a, const auto* b) {
        return index_.at(a->job_id) < index_.at(b->job_id);
      });
      // Name the members from the entry, each followed by its parent, back to the entry.
      std::vector<std::string> names;
      const JobRecord* at = entry;
      do {
        names.push_back(at->job_id);
        at = &jobs_[index_.at(at->parent_job_id)];
      } while (at != entry && names.size() < max_cycle_names);
      std::string text = fmt::format("{}", fmt::join(names, " → "));
      text += at == entry ? fmt::format(" → {}", entry->job_id) : fmt::format(" → … ({} jobs)", cycle.size());
      draw_from({entry, 0, "", ParentLink::cycle, "", std::move(text), 0, ""});
    }
    return std::move(lines_);
  }

  std::size_t hidden() const noexcept { return hidden_; }

 private:
  bool has_parent_here(const JobRecord& job) const {
    return !job.parent_job_id.empty() && job.parent_job_id != job.job_id && index_.contains(job.parent_job_id);
  }

  /// The cycle that following `start`'s parents ends in (every job left has a parent here).
  std::vector<const JobRecord*> cycle_through(const JobRecord& start) const {
    std::map<std::string, std::size_t> seen;
    std::vector<const JobRecord*> path;
    const JobRecord* at = &start;
    while (!seen.contains(at->job_id)) {
      seen.emplace(at->job_id, path.size());
      path.push_back(at);
      at = &jobs_[index_.at(at->parent_job_id)];
    }
    return {path.begin() + static_cast<std::ptrdiff_t>(seen.at(at->job_id)), path.end()};
  }

  std::vector<const JobRecord*> undrawn_children(const JobRecord& job) const {
    std::vector<const JobRecord*> result;
    const auto found = children_.find(job.job_id);
    if (found == children_.end()) return result;
    for (const JobRecord* child : found->second) {
      if (!drawn_.contains(child->job_id)) result.push_back(child);
    }
    return result;
  }

  /// Marks `job` and everything below it as seen without drawing them; returns how many.
  std::size_t hide(const JobRecord& job) {
    std::size_t count = 0;
    std::vector<const JobRecord*> stack{&job};
    while (!stack.empty()) {
      const JobRecord* next = stack.back();
      stack.pop_back();
      if (!drawn_.insert(next->job_id).second) continue;
      ++count;
      for (const JobRecord* child : undrawn_children(*next)) stack.push_back(child);
    }
    return count;
  }

  /// Draws `root` and what hangs below it. A job with hidden descendants gets a note line
  /// (a TreeLine without a job) after the last of its children drawn.
  void draw_from(TreeLine root) {
    struct Pending {
      TreeLine line;
      std::string children_indent;
    };
    std::vector<Pending> stack;
    stack.push_back({std::move(root), ""});
    while (!stack.empty()) {
      Pending pending = std::move(stack.back());
      stack.pop_back();
      if (pending.line.job == nullptr) {
        lines_.push_back(std::move(pending.line));
        continue;
      }
      if (!drawn_.insert(pending.line.job->job_id).second) continue;
      const std::size_t depth = pending.line.depth;
      std::vector<const JobRecord*> children = undrawn_children(*pending.line.job);
      lines_.push_back(std::move(pending.line));
      const std::size_t own = lines_.size() - 1;
      std::size_t shown = children.size();
      if (limits_.depth && depth >= *limits_.depth) shown = 0;
      if (limits_.width) shown = std::min(shown, *limits_.width);
      std::size_t hidden = 0;
      for (std::size_t i = shown; i < children.size(); ++i) hidden += hide(*children[i]);
      if (hidden > 0) {
        lines_[own].hidden_below = hidden;
        hidden_ += hidden;
        TreeLine note;
        note.depth = depth + 1;
        note.hidden_below = hidden;
        note.hidden_prefix = pending.children_indent + "└╌ ";
        stack.push_back({std::move(note), ""});
      }
      // Pushed last child first, so the oldest is drawn first.
      for (std::size_t i = shown; i-- > 0;) {
        const bool last = i + 1 == shown && hidden == 0;
        const std::size_t child_depth = depth + 1;
        std::string prefix, indent;
        if (child_depth <= max_drawn_depth) {
          prefix = pending.children_indent + (last ? "└─ " : "├─ ");
          indent = pending.children_indent + (last ? "   " : "│  ");
        } else {
          // The indent stays as it was at max_drawn_depth; the depth is written out.
          prefix = pending.children_indent + fmt::format("[{}] ", child_depth) + (last ? "└─ " : "├─ ");
          indent = pending.children_indent;
        }
        stack.push_back({{children[i], child_depth, std::move(prefix), ParentLink::in_trace, "", "", 0, ""},
                         std::move(indent)});
      }
    }
  }

  const std::vector<JobRecord>& jobs_;
  TreeLimits limits_;
  std::map<std::string, std::size_t> index_;  // job ID -> position, oldest first
  std::map<std::string, std::vector<const JobRecord*>> children_;  // oldest first, as stored
  std::set<std::string> drawn_;
  std::vector<TreeLine> lines_;
  std::size_t hidden_ = 0;
};

/// Looks up the parents that are not in the trace: recorded in another trace, recorded
/// without one, or never recorded.
inline std::map<std::string, OutsideParent> outside_parents(Store& store, const std::vector<JobRecord>& jobs) {
  std::set<std::string> here;
  for (const JobRecord& job : jobs) here.insert(job.job_id);
  std::map<std::string, OutsideParent> result;
  for (const JobRecord& job : jobs) {
    if (job.parent_job_id.empty() || here.contains(job.parent_job_id) || result.contains(job.parent_job_id)) continue;
    if (result.size() >= max_parent_lookups) break;
    OutsideParent parent;
    if (const std::optional<JobRecord> found = store.find_job(job.parent_job_id)) {
      parent.link = found->correlation_id.empty() ? ParentLink::elsewhere : ParentLink::other_trace;
      parent.correlation_id = found->correlation_id;
    }
    result.emplace(job.parent_job_id, parent);
  }
  return result;
}

}  // namespace jobtrail::view
