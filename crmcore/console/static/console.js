// crmcore console: small progressive enhancements (the pages work without this file).
// The language switcher submits itself when a language is chosen.
document.addEventListener("change", function (event) {
  var target = event.target;
  if (target && target.id === "lang-select" && target.form) { target.form.submit(); }
});
