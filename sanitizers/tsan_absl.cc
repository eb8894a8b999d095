// Lets ThreadSanitizer see absl::Mutex, absl::CondVar and absl::Notification.
//
// Debian's Abseil is not built with -fsanitize=thread, so its locks carry no
// annotations and TSan would take every access guarded by an absl::Mutex for
// a data race. A CLCA_SANITIZE=thread build links this file into every
// program: its definitions take the place of Abseil's for the program's own
// calls, call Abseil's through dlsym(RTLD_NEXT), and tell TSan what each did,
// as Abseil's own TSan build does. Waits (Await, CondVar::Wait) are a release
// and a re-acquisition of the mutex; what Abseil does inside them, including
// evaluating the caller's Condition, is not checked.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

#define CLCA_TSAN_STR(x) #x
#define CLCA_TSAN_XSTR(x) CLCA_TSAN_STR(x)

// The mangled name of absl::<rest>: prefix "_ZN" (or "_ZNK" for const member
// functions), "4absl", the inline namespace if any, then `rest`.
std::string Mangled(const char* prefix, const char* rest) {
  std::string name = std::string(prefix) + "4absl";
#if ABSL_OPTION_USE_INLINE_NAMESPACE
  const std::string inline_namespace = CLCA_TSAN_XSTR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  name += std::to_string(inline_namespace.size()) + inline_namespace;
#endif
  return name + rest;
}

// Abseil's own definition of the function named by `prefix` and `rest`.
template <typename Function>
Function Real(const char* prefix, const char* rest) {
  const std::string name = Mangled(prefix, rest);
  void* function = dlsym(RTLD_NEXT, name.c_str());
  if (function == nullptr) {
    std::fprintf(stderr, "tsan_absl: Abseil has no %s\n", name.c_str());
    std::abort();
  }
  return reinterpret_cast<Function>(function);
}

// Abseil's functions call each other through the same symbols (LockWhen
// may lock and unlock on its own): only the outermost call is annotated, so
// that TSan sees each acquisition and release once.
thread_local int nesting = 0;

template <typename Call>
auto Nested(Call call) {
  struct Depth {
    Depth() { ++nesting; }
    ~Depth() { --nesting; }
  } depth;
  return call();
}

bool Outermost() { return nesting == 0; }

// A wait inside which Abseil releases and re-acquires `mu`: TSan sees a
// release before it and an acquisition after it, and nothing in between.
template <typename Wait>
auto ReleasedDuring(void* mu, unsigned flags, Wait wait) {
  const bool outermost = Outermost();
  if (outermost) __tsan_mutex_pre_unlock(mu, flags);
  auto result = Nested(wait);
  if (outermost) {
    __tsan_mutex_post_unlock(mu, flags);
    __tsan_mutex_pre_lock(mu, flags);
    __tsan_mutex_post_lock(mu, flags, 0);
  }
  return result;
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  const bool outer = Outermost();
  static const auto real = Real<void (*)(Mutex*)>("_ZN", "5Mutex4LockEv");
  if (outer) __tsan_mutex_pre_lock(this, 0);
  Nested([&] { real(this); });
  if (outer) __tsan_mutex_post_lock(this, 0, 0);
}

void Mutex::ReaderLock() {
  const bool outer = Outermost();
  static const auto real = Real<void (*)(Mutex*)>("_ZN", "5Mutex10ReaderLockEv");
  if (outer) __tsan_mutex_pre_lock(this, __tsan_mutex_read_lock);
  Nested([&] { real(this); });
  if (outer) __tsan_mutex_post_lock(this, __tsan_mutex_read_lock, 0);
}

bool Mutex::TryLock() {
  const bool outer = Outermost();
  static const auto real = Real<bool (*)(Mutex*)>("_ZN", "5Mutex7TryLockEv");
  if (outer) __tsan_mutex_pre_lock(this, __tsan_mutex_try_lock);
  const bool locked = Nested([&] { return real(this); });
  if (outer) {
    __tsan_mutex_post_lock(this, __tsan_mutex_try_lock | (locked ? 0 : __tsan_mutex_try_lock_failed),
                           0);
  }
  return locked;
}

bool Mutex::ReaderTryLock() {
  const bool outer = Outermost();
  static const auto real = Real<bool (*)(Mutex*)>("_ZN", "5Mutex13ReaderTryLockEv");
  const unsigned flags = __tsan_mutex_read_lock | __tsan_mutex_try_lock;
  if (outer) __tsan_mutex_pre_lock(this, flags);
  const bool locked = Nested([&] { return real(this); });
  if (outer) __tsan_mutex_post_lock(this, flags | (locked ? 0 : __tsan_mutex_try_lock_failed), 0);
  return locked;
}

void Mutex::Unlock() {
  const bool outer = Outermost();
  static const auto real = Real<void (*)(Mutex*)>("_ZN", "5Mutex6UnlockEv");
  if (outer) __tsan_mutex_pre_unlock(this, 0);
  Nested([&] { real(this); });
  if (outer) __tsan_mutex_post_unlock(this, 0);
}

void Mutex::ReaderUnlock() {
  const bool outer = Outermost();
  static const auto real = Real<void (*)(Mutex*)>("_ZN", "5Mutex12ReaderUnlockEv");
  if (outer) __tsan_mutex_pre_unlock(this, __tsan_mutex_read_lock);
  Nested([&] { real(this); });
  if (outer) __tsan_mutex_post_unlock(this, __tsan_mutex_read_lock);
}

void Mutex::LockWhen(const Condition& cond) {
  const bool outer = Outermost();
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("_ZN", "5Mutex8LockWhenERKNS0_9ConditionE");
  if (outer) __tsan_mutex_pre_lock(this, 0);
  Nested([&] { real(this, cond); });
  if (outer) __tsan_mutex_post_lock(this, 0, 0);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  const bool outer = Outermost();
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      "_ZN", "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  if (outer) __tsan_mutex_pre_lock(this, 0);
  const bool met = Nested([&] { return real(this, cond, timeout); });
  if (outer) __tsan_mutex_post_lock(this, 0, 0);
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  const bool outer = Outermost();
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      "_ZN", "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  if (outer) __tsan_mutex_pre_lock(this, 0);
  const bool met = Nested([&] { return real(this, cond, deadline); });
  if (outer) __tsan_mutex_post_lock(this, 0, 0);
  return met;
}

void Mutex::Await(const Condition& cond) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("_ZN", "5Mutex5AwaitERKNS0_9ConditionE");
  ReleasedDuring(this, 0, [&] {
    real(this, cond);
    return true;
  });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      "_ZN", "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return ReleasedDuring(this, 0, [&] { return real(this, cond, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      "_ZN", "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return ReleasedDuring(this, 0, [&] { return real(this, cond, deadline); });
}

Mutex::~Mutex() {
  const bool outer = Outermost();
  static const auto real = Real<void (*)(Mutex*)>("_ZN", "5MutexD2Ev");
  if (outer) __tsan_mutex_destroy(this, 0);
  Nested([&] { real(this); });
}

void CondVar::Wait(Mutex* mu) {
  static const auto real = Real<void (*)(CondVar*, Mutex*)>("_ZN", "7CondVar4WaitEPNS0_5MutexE");
  ReleasedDuring(mu, 0, [&] {
    real(this, mu);
    return true;
  });
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, absl::Duration)>(
      "_ZN", "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  return ReleasedDuring(mu, 0, [&] { return real(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, absl::Time)>(
      "_ZN", "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  return ReleasedDuring(mu, 0, [&] { return real(this, mu, deadline); });
}

// Notify releases, and a wait that saw the notification acquires, on the
// flag HasBeenNotified reads, so that its (instrumented) acquire load pairs
// with Notify too.
void Notification::Notify() {
  const bool outer = Outermost();
  static const auto real = Real<void (*)(Notification*)>("_ZN", "12Notification6NotifyEv");
  if (outer) __tsan_release(&notified_yet_);
  Nested([&] { real(this); });
}

void Notification::WaitForNotification() const {
  const bool outer = Outermost();
  static const auto real =
      Real<void (*)(const Notification*)>("_ZNK", "12Notification19WaitForNotificationEv");
  Nested([&] { real(this); });
  if (outer) __tsan_acquire(const_cast<std::atomic<bool>*>(&notified_yet_));
}

bool Notification::WaitForNotificationWithTimeout(absl::Duration timeout) const {
  static const auto real = Real<bool (*)(const Notification*, absl::Duration)>(
      "_ZNK", "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool notified = Nested([&] { return real(this, timeout); });
  if (notified) __tsan_acquire(const_cast<std::atomic<bool>*>(&notified_yet_));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  static const auto real = Real<bool (*)(const Notification*, absl::Time)>(
      "_ZNK", "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool notified = Nested([&] { return real(this, deadline); });
  if (notified) __tsan_acquire(const_cast<std::atomic<bool>*>(&notified_yet_));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
