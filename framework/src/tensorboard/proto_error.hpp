// The error the TensorBoard decoders throw when bytes are not the protobuf message expected.
#pragma once

#include <stdexcept>

namespace recrun::tensorboard {

/// Thrown by decode_event, decode_hparams_plugin_data and encode_summary_event when bytes do
/// not parse as the message they should hold (libprotobuf refused them).
class ProtoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace recrun::tensorboard
