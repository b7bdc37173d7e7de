#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace zshard {

// Edit distance (insertions, deletions, substitutions, adjacent
// transpositions), case-insensitive. Pure function.
int editDistance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is close enough to be a plausible
// misspelling (distance <= max(1, |word| / 3)); empty when none is, or
// when `word` is longer than kMaxSuggestedLength. Ties go to the first
// candidate. Costs |word| x |candidate| only for candidates of a length
// within the limit.
inline constexpr size_t kMaxSuggestedLength = 100;
std::string closestMatch(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace zshard
