// The reset form's phone field.
(function () {
  // The mask +7 (9XX) XXX-XX-XX, filled as the user types; the server parses whatever arrives.
  // The country code is read once: from a leading "+7" (the mask's own or typed), otherwise a leading
  // 8 or 7 typed or pasted without "+" is dropped, so "8 916…" and "+7 916…" both give +7 (916)….
  var phone = document.getElementById("phone");
  if (phone) {
    phone.addEventListener("input", function () {
      var value = phone.value.trim();
      var digits;
      if (value.indexOf("+7") === 0) {
        digits = value.slice(2).replace(/\D/g, "");
      } else {
        digits = value.replace(/\D/g, "");
        // Nothing but "+" or spaces: leave it, so the field can be emptied and "+7" typed.
        if (!digits) { return; }
        if (digits.charAt(0) === "8" || digits.charAt(0) === "7") { digits = digits.slice(1); }
      }
      digits = digits.slice(0, 10);
      var out = "+7";
      if (digits.length > 0) { out += " (" + digits.slice(0, 3); }
      // The bracket closes only before the next digit: one standing alone would come back after Backspace.
      if (digits.length > 3) { out += ") " + digits.slice(3, 6); }
      if (digits.length > 6) { out += "-" + digits.slice(6, 8); }
      if (digits.length > 8) { out += "-" + digits.slice(8, 10); }
      phone.value = out;
    });
  }
})();
