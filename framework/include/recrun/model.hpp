// recrun/model.hpp — the Model interface and what the framework hands to it
// (recrun/model_interface.hpp), with all of LibTorch, which every model computes with.
#pragma once

#include <torch/torch.h>

#include "recrun/model_interface.hpp"
