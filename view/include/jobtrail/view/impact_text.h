#pragma once
/// \file
/// An impact report in words, for people: what was asked and what was found. One wording for
/// `jobtrail impact` and the console's blast-radius page.

#include <string>

#include "jobtrail/store.h"

namespace jobtrail::view {

/// What was asked, the default since too: "PaymentJob jobs now failed or dead, first seen
/// since T", "jobs of any class in any state, first seen since T". Quotes the class as given
/// (escape it before showing it).
std::string impact_scope(const ImpactFilter& filter);

/// What was found: "9 jobs matched, 7 tagged with entities, 8 distinct entities (customer: 3,
/// invoice: 5)"; "3 jobs matched, none tagged with entities"; of a read cut short at max_jobs,
/// "41022 jobs matched; of the newest 10000 read, 9120 tagged with entities, …". Quotes
/// entity types as stored.
std::string impact_summary(const ImpactFilter& filter, const ImpactReport& report);

/// "showing 3 of 11 entities" when the report lists fewer entities than it counted, else "".
std::string impact_shown(const ImpactReport& report);

}  // namespace jobtrail::view
