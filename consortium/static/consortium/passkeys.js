// After a passkey is registered (django-otp-webauthn's register_complete event), go to
// the page named by data-after-passkey on the element with id "passkey-flow".
"use strict";
document.addEventListener("otp_webauthn.register_complete", function () {
    const flow = document.getElementById("passkey-flow");
    const after = flow && flow.dataset.afterPasskey;
    window.location.assign(after || window.location.href);
});
