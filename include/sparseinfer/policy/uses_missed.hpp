// sparseinfer/policy/uses_missed.hpp - whether a policy state wants each token's misses listed.
//
// Part of the policy contract (policies.hpp): NeuronCache asks it of every state.
//
//   static_assert(sparseinfer::policy::uses_missed<sparseinfer::policy::Lru::state>);
#pragma once

#include <type_traits>

namespace sparseinfer::policy {

/// True when a policy state declares `static constexpr bool uses_missed = true;`: NeuronCache then
/// lists each token's misses while it counts the token, and on_token reads them from
/// ctx.missed() / ctx.missed_count() instead of testing every active neuron again.
template <class State, class = void>
inline constexpr bool uses_missed = false;
template <class State>
inline constexpr bool uses_missed<State, std::void_t<decltype(State::uses_missed)>> = State::uses_missed;

}  // namespace sparseinfer::policy
