#include "models/preprocess/jpeg_cmyk.h"

#include <algorithm>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <vector>

// After <cstdio>: jpeglib.h uses FILE.
#include <jerror.h>
#include <jpeglib.h>

#include "absl/strings/str_cat.h"

namespace clca {
namespace {

// PIL's MULDIV255: a * b / 255, rounded.
inline int MulDiv255(int a, int b) {
  const int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

// libjpeg reports errors through error_exit, which must not return: it jumps
// back to DecodeRows. Warnings are not printed; running out of data is noted.
struct ErrorManager {
  jpeg_error_mgr pub;  // First: libjpeg passes a pointer to it.
  std::jmp_buf jump;
  bool truncated;
};

[[noreturn]] void OnError(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<ErrorManager*>(cinfo->err)->jump, 1);
}

void OnMessage(j_common_ptr cinfo, int level) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  if (level < 0 && err->pub.msg_code == JWRN_JPEG_EOF) err->truncated = true;
}

// The libjpeg part, kept free of C++ objects that a longjmp would skip.
struct Job {
  const uint8_t* data;
  size_t size;
  long max_memory;
  int width;
  int height;
  uint8_t* rgb;  // width * height * 3 bytes.
  uint8_t* row;  // width * 4 bytes.
  char message[JMSG_LENGTH_MAX];
};

// Returns true on success; false with job->message set otherwise.
bool DecodeRows(Job* job) {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = OnError;
  err.pub.emit_message = OnMessage;
  err.truncated = false;
  if (setjmp(err.jump) != 0) {
    err.pub.format_message(reinterpret_cast<j_common_ptr>(&cinfo), job->message);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  // Beyond this, libjpeg would need a backing store and fails instead.
  cinfo.mem->max_memory_to_use = job->max_memory;
  jpeg_mem_src(&cinfo, job->data, static_cast<unsigned long>(job->size));
  jpeg_read_header(&cinfo, TRUE);
  // libjpeg picks CMYK or YCCK from the Adobe marker, as for PIL.
  cinfo.out_color_space = JCS_CMYK;
  jpeg_start_decompress(&cinfo);
  if (static_cast<int>(cinfo.output_width) != job->width ||
      static_cast<int>(cinfo.output_height) != job->height || cinfo.output_components != 4) {
    std::snprintf(job->message, sizeof(job->message),
                  "libjpeg reads %ux%u pixels of %d components, the header %dx%d of 4",
                  cinfo.output_width, cinfo.output_height, cinfo.output_components, job->width,
                  job->height);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  JSAMPROW rows[1] = {job->row};
  while (cinfo.output_scanline < cinfo.output_height) {
    const size_t y = cinfo.output_scanline;
    if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) break;
    CmykToRgbPil(job->row, static_cast<size_t>(job->width),
                 job->rgb + y * static_cast<size_t>(job->width) * 3);
  }
  // Not jpeg_finish_decompress: like PIL, accept a missing end marker once
  // every row is decoded.
  const bool truncated = err.truncated || cinfo.output_scanline < cinfo.output_height;
  jpeg_destroy_decompress(&cinfo);
  if (truncated) {
    std::snprintf(job->message, sizeof(job->message), "the data ends before the last row");
    return false;
  }
  return true;
}

}  // namespace

void CmykToRgbPil(const uint8_t* cmyk, size_t pixels, uint8_t* rgb) {
  for (size_t i = 0; i < pixels; ++i, cmyk += 4, rgb += 3) {
    const int k = cmyk[3];
    rgb[0] = static_cast<uint8_t>(k - MulDiv255(255 - cmyk[0], k));
    rgb[1] = static_cast<uint8_t>(k - MulDiv255(255 - cmyk[1], k));
    rgb[2] = static_cast<uint8_t>(k - MulDiv255(255 - cmyk[2], k));
  }
}

absl::StatusOr<RgbImage> DecodeCmykJpeg(const uint8_t* data, size_t size,
                                        const ImageHeader& header,
                                        const PreprocessOptions& options) {
  RgbImage image;
  image.width = header.width;
  image.height = header.height;
  image.pixels.resize(static_cast<size_t>(header.width) * header.height * 3);
  std::vector<uint8_t> row(static_cast<size_t>(header.width) * 4);
  Job job{};
  job.data = data;
  job.size = size;
  // InspectImage counted the coefficient buffer in decode_bytes; the margin
  // is for libjpeg's tables and row buffers.
  constexpr int64_t kMargin = 16 << 20;
  job.max_memory =
      static_cast<long>(std::min(options.max_decode_bytes, INT64_MAX - kMargin) + kMargin);
  job.width = header.width;
  job.height = header.height;
  job.rgb = image.pixels.data();
  job.row = row.data();
  if (!DecodeRows(&job)) {
    return absl::InvalidArgumentError(
        absl::StrCat("could not decode the CMYK JPEG: ", job.message));
  }
  return image;
}

}  // namespace clca
