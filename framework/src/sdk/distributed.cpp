#include "recrun/distributed.hpp"

#include "sdk/host_access.hpp"

namespace recrun {
namespace {
Collective* g_group = nullptr;
}  // namespace

Collective* collective() { return g_group; }

void sdk_internal::set_collective(Collective* group) { g_group = group; }

int process_rank() { return g_group ? g_group->rank() : 0; }

int process_world_size() { return g_group ? g_group->world_size() : 1; }

bool any_rank(bool local) {
  if (!g_group || g_group->world_size() == 1) return local;
  torch::Tensor flag = torch::tensor({local ? 1.0f : 0.0f});
  g_group->all_reduce_sum(flag);
  return flag.item<float>() > 0;
}

}  // namespace recrun
