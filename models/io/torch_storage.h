// The names torch.save gives tensor storages, both ways.
#pragma once

#include <optional>

#include <torch/torch.h>

#include "models/io/pickle.h"

namespace clca {

// The dtype of a storage class such as torch.HalfStorage (or a dtype global
// such as torch.float16); nullopt for anything else.
std::optional<torch::ScalarType> StorageDtype(const PickleValue& storage);

// The storage class torch.save names for a dtype, or null for dtypes it
// cannot hold.
const char* StorageClass(torch::ScalarType dtype);

}  // namespace clca
