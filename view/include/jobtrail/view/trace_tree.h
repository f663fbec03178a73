#pragma once
/// \file
/// The tree of a trace: its jobs in drawing order under the job that enqueued them. `trace`
/// draws it and its JSON (and GET /v1/traces/ID) follows the same order.

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "jobtrail/store.h"

namespace jobtrail::view {

/// One job in drawing order, with what the tree needs to draw it.
struct TreeLine {
  const JobRecord* job = nullptr;
  std::size_t depth = 0;
  std::string prefix;  ///< "│  ├─ " and the like; empty for roots
  bool parent_missing = false;
};

/// Orders the jobs depth-first under their parents. A job whose parent is not in this
/// trace is a root; so is any job caught in a parent cycle, so that every job is drawn
/// exactly once whatever the events claim. Not thread-safe; one per drawing.
class TreeBuilder {
 public:
  explicit TreeBuilder(const std::vector<JobRecord>& jobs) : jobs_(jobs) {
    for (const JobRecord& job : jobs_) by_id_.emplace(job.job_id, &job);
    for (const JobRecord& job : jobs_) {
      if (has_parent_here(job)) children_[job.parent_job_id].push_back(&job);
    }
  }

  std::vector<TreeLine> lines() {
    for (const JobRecord& job : jobs_) {
      if (!has_parent_here(job)) visit(job, 0, "", "", !job.parent_job_id.empty());
    }
    // Whatever is left sits on a cycle: draw each remaining one as a root.
    for (const JobRecord& job : jobs_) {
      if (!drawn_.contains(job.job_id)) visit(job, 0, "", "", false);
    }
    return std::move(lines_);
  }

 private:
  bool has_parent_here(const JobRecord& job) const {
    return !job.parent_job_id.empty() && job.parent_job_id != job.job_id && by_id_.contains(job.parent_job_id);
  }

  void visit(const JobRecord& job, std::size_t depth, const std::string& own_prefix,
             const std::string& children_indent, bool parent_missing) {
    if (!drawn_.insert(job.job_id).second) return;
    lines_.push_back({&job, depth, own_prefix, parent_missing});
    const auto found = children_.find(job.job_id);
    if (found == children_.end()) return;
    std::vector<const JobRecord*> children;
    for (const JobRecord* child : found->second) {
      if (!drawn_.contains(child->job_id)) children.push_back(child);
    }
    for (std::size_t i = 0; i < children.size(); ++i) {
      const bool last = i + 1 == children.size();
      visit(*children[i], depth + 1, children_indent + (last ? "└─ " : "├─ "),
            children_indent + (last ? "   " : "│  "), false);
    }
  }

  const std::vector<JobRecord>& jobs_;
  std::map<std::string, const JobRecord*> by_id_;
  std::map<std::string, std::vector<const JobRecord*>> children_;  // oldest first, as stored
  std::set<std::string> drawn_;
  std::vector<TreeLine> lines_;
};

}  // namespace jobtrail::view
