// Four-component JPEGs (CMYK, and YCCK, which libjpeg turns into CMYK),
// decoded with libjpeg and converted to RGB as PIL converts them. OpenCV
// cannot give the CMYK samples, and its own conversion rounds differently.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "models/preprocess/preprocess.h"

namespace clca {

// Decodes a JPEG whose header InspectImage accepted with header.cmyk set.
// libjpeg's memory is capped at options.max_decode_bytes. INVALID_ARGUMENT
// for corrupt or truncated data (libjpeg's message), as PIL refuses them.
absl::StatusOr<RgbImage> DecodeCmykJpeg(const uint8_t* data, size_t size,
                                        const ImageHeader& header,
                                        const PreprocessOptions& options);

// PIL's conversion of `pixels` CMYK samples as libjpeg decodes them to RGB.
// PIL reads every four-component JPEG as Adobe-inverted ("CMYK;I": it
// stores 255 - v) and its cmyk2rgb computes nk - nk * c / 255 with
// nk = 255 - k, rounded as MULDIV255; on libjpeg's samples that is
// K - round((255 - C) * K / 255) per channel.
void CmykToRgbPil(const uint8_t* cmyk, size_t pixels, uint8_t* rgb);

}  // namespace clca
