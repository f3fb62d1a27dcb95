// recrun/plugin.hpp — the one header a plugin includes.
//
//   #include <recrun/plugin.hpp>
//   RECRUN_PLUGIN(registry) { registry.add_model({...}); }
//
// RECRUN_PLUGIN defines the library's entry point (recrun_plugin_entry) and its ABI stamp
// (recrun_abi_v1, a name that never changes; the stamp carries the SDK version), both exported
// with Boost.DLL aliases. The host compares the stamp, then calls the entry point once, with its
// own Registry; there is no static self-registration.
#pragma once

#include <boost/dll/alias.hpp>

#include "recrun/abi.hpp"
#include "recrun/archive.hpp"
#include "recrun/data_source.hpp"
#include "recrun/dataset.hpp"
#include "recrun/error.hpp"
#include "recrun/feature.hpp"
#include "recrun/fields.hpp"
#include "recrun/member_ref.hpp"
#include "recrun/model.hpp"
#include "recrun/optim.hpp"
#include "recrun/params.hpp"
#include "recrun/registry.hpp"

namespace recrun::detail {
/// Entry point signature of every plugin library.
using PluginEntry = void(::recrun::Registry&);
/// ABI stamp function signature.
using AbiStampFn = const char*();
}  // namespace recrun::detail

#define RECRUN_PLUGIN(registry_var)                                             \
  namespace recrun_plugin_detail {                                               \
  void register_components(::recrun::Registry& registry_var);                    \
  inline const char* abi_stamp() { return RECRUN_ABI_STAMP; }                    \
  }                                                                              \
  BOOST_DLL_ALIAS(recrun_plugin_detail::register_components, recrun_plugin_entry)\
  BOOST_DLL_ALIAS(recrun_plugin_detail::abi_stamp, recrun_abi_v1)                \
  void recrun_plugin_detail::register_components(::recrun::Registry& registry_var)
