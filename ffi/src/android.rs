//! Android only: hands rustls' platform verifier the app's JVM and `Context`, so `https://`
//! syncs check certificates with the Android trust store (user-added CAs and the device's
//! policy included). Called once from Kotlin, before the first `https://` sync:
//! `DoorstepAndroid.initPlatformVerifier(applicationContext)`
//! (`ffi/android-support/uniffi/doorstep_ffi/DoorstepAndroid.kt`; docs/embedding.md).
//!
//! UniFFI cannot pass a JNI environment or a `Context` (its Kotlin bindings call through
//! JNA), so this one function is a plain JNI export. Unverified on this project's machines:
//! they have no NDK (ADR 0030).

use std::sync::atomic::{AtomicBool, Ordering};

use jni::errors::ThrowRuntimeExAndDefault;
use jni::objects::{JClass, JObject};
use jni::EnvUnowned;

use crate::error::{DoorstepError, NetworkErrorKind, Result};

/// Set once the verifier has the JVM and `Context`.
static READY: AtomicBool = AtomicBool::new(false);

/// An `https://` address before `initPlatformVerifier` is refused with a TLS error that says
/// what to call (the verifier itself would panic on its first certificate).
pub(crate) fn https_ready(server_url: &str) -> Result<()> {
    let https = server_url
        .trim_start()
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("https:"));
    if https && !READY.load(Ordering::Acquire) {
        return Err(DoorstepError::Network {
            kind: NetworkErrorKind::Tls,
            reason: "call DoorstepAndroid.initPlatformVerifier(context) before an https:// sync"
                .into(),
        });
    }
    Ok(())
}

/// `uniffi.doorstep_ffi.DoorstepAndroid.initPlatformVerifier(context)`. Idempotent; a JNI
/// failure is thrown to the caller as a `RuntimeException` (it carries no personal data).
#[jni::jni_mangle("uniffi.doorstep_ffi.DoorstepAndroid")]
pub fn init_platform_verifier<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    context: JObject<'local>,
) {
    // `false` (the default) when it failed: the exception is already thrown to the caller.
    let initialised = env
        .with_env(|env| {
            rustls_platform_verifier::android::init_with_env(env, context).map(|()| true)
        })
        .resolve::<ThrowRuntimeExAndDefault>();
    if initialised {
        READY.store(true, Ordering::Release);
    }
}
