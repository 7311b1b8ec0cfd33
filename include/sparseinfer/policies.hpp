// sparseinfer/policies.hpp - the residency policies NeuronCache is templated on.
//
//   policy::FrequencyThreshold{0.2, 1000}  hot when count >= tokens * 0.2, reclassified every 1000 tokens
//   policy::StaticProfile{2201}            the 2201 most frequent neurons of a profile, fixed (PowerInfer)
//   policy::Lru{2201}                      the 2201 most recently active neurons
//   policy::SlidingWindow{4, 2201}         neurons active in the last 4 tokens, at most 2201 (LLM in a Flash)
//   policy::Adaptive{2201}                 recency-protected, decayed-frequency admission (see below)
//
//   sparseinfer::NeuronCache<sparseinfer::policy::Lru> cache(11008, {2201});
//
// A policy is a small configuration struct with a nested `state` class that
// NeuronCache owns. The state is driven through hooks; to write a new policy,
// provide the same members:
//
//   explicit state(const Policy& config, std::size_t num_neurons);  // validates (throws sparseinfer::error)
//   std::size_t capacity() const;                     // resident-set bound incl. pins, 0 = unbounded
//   template <class Ctx> void on_token(Ctx&, const std::uint32_t* active, std::size_t n);
//   template <class Ctx> void on_reclassify(Ctx&);    // NeuronCache::reclassify(), load_profile()
//   template <class Ctx> void on_pin(Ctx&, std::uint32_t neuron);
//
// on_token receives one token's active neurons after the cache counted them
// (deduplicated, pinned ones removed, hits already scored against the resident
// set before the token). The Ctx is NeuronCache's residency view:
//   num_neurons(), tokens() (tokens recorded, this one included), count(n) (lifetime
//   activations), resident(n), pinned(n), resident_count() (pins included),
//   pinned_count(), admit(n), evict(n) (never on a pinned neuron), replace(out, in) (evict(out),
//   then admit(in)), and the batch forms admit(ns, n, done) and evict(ns, n). A state that
//   declares `static constexpr bool uses_missed = true;` also gets the token's misses, listed while
//   the cache counted it: missed(), missed_count() (see policy::uses_missed).
// on_pin(ctx, n) is called before n becomes pinned: the policy stops tracking n
// and, when n is not resident and the resident set is at capacity, evicts one of
// its own neurons to make room. A capacity policy keeps resident_count() <=
// capacity() after every hook. Per token, the hooks must cost O(n) amortised.
//
// Each policy lives in its own header under policy/; this one includes them all.
#pragma once

#include "policy/adaptive.hpp"
#include "policy/frequency_threshold.hpp"
#include "policy/lru.hpp"
#include "policy/sliding_window.hpp"
#include "policy/static_profile.hpp"
#include "policy/uses_missed.hpp"
