// OAuth 2.0 Form Post Response Mode: send the authorization response to the relying party at once.
// A file of our origin, not an inline handler, so the Content-Security-Policy (script from 'self') allows it.
document.getElementById("form-post").submit();
