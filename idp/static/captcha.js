// The captcha widget (templates/captcha/widget.html). Without JavaScript its two links still work:
// «Прослушать код» opens the sound in the browser's player, «Обновить» reloads the page. Here
// «Прослушать код» plays the sound in the page (its controls then appear, to pause or listen again) and
// «Обновить» fetches a new challenge for the form, the image and the sound together.
(function () {
  var token = document.getElementById("captcha_token");
  var image = document.getElementById("captcha-image");
  var audio = document.getElementById("captcha-audio");
  var listen = document.getElementById("captcha-listen");
  var refresh = document.getElementById("captcha-refresh");
  var status = document.getElementById("captcha-status");
  var answer = document.getElementById("captcha");
  if (!token || !image || !audio || !listen || !refresh || !status) { return; }

  // A refusal (too many requests, no voice on the server) is explained by the server's own short text,
  // in the page's language, which the status region reads out.
  function explain(response) {
    return response.text().then(function (text) { status.textContent = text; });
  }

  function withChallenge(url, value) {
    var parsed = new URL(url, document.baseURI);
    parsed.searchParams.set("c", value);
    return parsed.pathname + parsed.search;
  }

  function renew(challenge) {
    status.textContent = "";
    token.value = challenge.token;
    image.src = withChallenge(image.getAttribute("src"), challenge.token);
    listen.href = withChallenge(listen.getAttribute("href"), challenge.token);
    audio.pause();
    audio.removeAttribute("src");
    audio.load();
    audio.hidden = true;
    if (answer) { answer.value = ""; answer.focus(); }
  }

  listen.addEventListener("click", function (event) {
    event.preventDefault();
    if (audio.getAttribute("src") !== listen.getAttribute("href")) {
      audio.src = listen.getAttribute("href");
    }
    status.textContent = "";
    audio.hidden = false;
    if (audio.readyState > 0) { audio.currentTime = 0; }
    audio.play().catch(function (error) {
      // The sound did not load: ask once more to learn why (429 and 404 come before any work).
      if (error.name === "NotSupportedError") {
        fetch(audio.src, { credentials: "same-origin", cache: "no-store" }).then(function (response) {
          if (!response.ok) { return explain(response); }
        });
      }
    });
  });

  refresh.addEventListener("click", function (event) {
    event.preventDefault();
    fetch(refresh.dataset.new, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json().then(renew) : explain(response); })
      .catch(function () { window.location.href = refresh.href; });
  });
})();
