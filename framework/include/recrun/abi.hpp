// recrun/abi.hpp — the stamp that tells the host whether a plugin was built compatibly.
#pragma once

#include <torch/version.h>

// 2: typed parameter binding (Fields<Options>, add_model<Options>), OptimizerKind.
// 3: ModelEnv::host (HostServices: finished runs and inline members, for ensembles). The
//    registration API is unchanged, so the entry point keeps its name; the stamp tells them apart.
// 4: data-parallel training (recrun/distributed.hpp; TrainContext::shard, rank, world_size;
//    step() with a weight). TrainContext::out_of_time() is no longer inline.
// 5: parameters that refer to other plugins (refers_to, only_when), float-list parameters,
//    member references parsed in the SDK (recrun/member_ref.hpp); host-only calls moved out of
//    the plugin headers; the entry point's name no longer carries a version (this number is the
//    one version of the SDK's ABI, compared through the stamp).
#define RECRUN_SDK_VERSION 5

/// The ABI stamp's symbol: never renamed, so any recrun can read any plugin's stamp.
#define RECRUN_ABI_SYMBOL "recrun_abi_v1"
/// The entry point's symbol. It carries no version: the stamp is compared before it is looked
/// up, so a plugin of another SDK is refused with the stamp's message.
#define RECRUN_ENTRY_SYMBOL "recrun_plugin_entry"

#define RECRUN_STR2_(x) #x
#define RECRUN_STR_(x) RECRUN_STR2_(x)

/// "sdk=1;torch=1.13.0;gcc=12.2;cxx11abi=1": everything that must match between host and plugin.
#define RECRUN_ABI_STAMP                                                                      \
  "sdk=" RECRUN_STR_(RECRUN_SDK_VERSION) ";torch=" TORCH_VERSION ";gcc=" RECRUN_STR_(        \
      __GNUC__) "." RECRUN_STR_(__GNUC_MINOR__) ";cxx11abi=" RECRUN_STR_(_GLIBCXX_USE_CXX11_ABI)

namespace recrun {
/// The stamp the running host was built with.
const char* host_abi_stamp();
}  // namespace recrun
