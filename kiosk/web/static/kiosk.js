// The kiosk screen: attract → hello → story, live from the kiosk's own Server-Sent Events.
// One scene at a time: its picture large, its words large, read aloud; pages turn at reading pace
// (after the voice finishes, or by a word-count timer where no voice is installed) and by touch.
"use strict";
(function () {
  const WORDS_PER_SECOND = 2.2;    // a calm reading pace for young listeners
  const PAGE_PAUSE_MS = 2500;      // a breath between pages
  const MIN_PAGE_MS = 5000;
  const graceMs = Number(document.body.dataset.graceMs || 20000);
  const $ = (id) => document.getElementById(id);
  const view = {
    story: null, pictures: {}, page: 0, present: false, pageTimer: null, leaveTimer: null,
    muted: localStorage.getItem("kiosk-muted") === "true", spoken: [],
  };

  // -- read-aloud --------------------------------------------------------------------------------
  const speech = "speechSynthesis" in window ? window.speechSynthesis : null;

  function childVoice() {
    const voices = speech ? speech.getVoices() : [];
    const english = voices.filter((v) => v.lang && v.lang.toLowerCase().startsWith("en"));
    return english.find((v) => /female|child|kid|samantha|zira|libby|sonia/i.test(v.name)) || english[0] || null;
  }

  function speak(text, onDone) {
    view.spoken.push(text);  // what the page asked to be read (the browser tests check it)
    if (!speech || view.muted) return false;
    try {
      speech.cancel();
      const utterance = new SpeechSynthesisUtterance(text);
      const voice = childVoice();
      if (voice) utterance.voice = voice;
      utterance.rate = 0.85;
      utterance.pitch = 1.15;
      utterance.onend = onDone;
      utterance.onerror = onDone;
      speech.speak(utterance);
      return true;
    } catch (err) {
      return false;  // no voice must never stop the story
    }
  }

  function stopSpeaking() {
    if (speech) speech.cancel();
  }

  function renderMute() {
    const button = $("mute");
    button.setAttribute("aria-pressed", String(view.muted));
    button.setAttribute("aria-label", view.muted ? "Sound is off: tap to read aloud" : "Sound is on: tap for quiet");
    button.classList.toggle("muted", view.muted);
  }

  $("mute").addEventListener("click", (e) => {
    e.stopPropagation();
    view.muted = !view.muted;
    localStorage.setItem("kiosk-muted", String(view.muted));
    if (view.muted) stopSpeaking();
    renderMute();
  });

  // -- screens -----------------------------------------------------------------------------------
  function show(screen) {
    for (const id of ["attract", "hello", "story"]) $(id).classList.toggle("hidden", id !== screen);
  }

  function reset() {
    view.story = null; view.pictures = {}; view.page = 0;
    clearTimeout(view.pageTimer); view.pageTimer = null;
    stopSpeaking();
  }

  function renderPicture() {
    const picture = view.pictures[view.page];
    const img = $("scene-picture");
    if (picture) {
      if (img.getAttribute("src") !== picture.url) {
        img.classList.remove("shown");
        img.onload = () => img.classList.add("shown");
        img.src = picture.url;
      }
      img.alt = "A picture of this part of the story";
      img.classList.remove("hidden");
      $("scene-placeholder").classList.add("hidden");
    } else {
      img.classList.add("hidden");
      $("scene-placeholder").classList.remove("hidden");
    }
  }

  function renderPage() {
    const story = view.story;
    if (!story) return;
    $("story-title").textContent = story.title;
    $("scene-text").textContent = story.scenes[view.page].text;
    renderPicture();
    $("scene-dots").replaceChildren(...story.scenes.map((_, i) => {
      const dot = document.createElement("button");
      dot.setAttribute("aria-label", "page " + (i + 1));
      dot.setAttribute("aria-current", String(i === view.page));
      dot.addEventListener("click", (e) => { e.stopPropagation(); turnTo(i); });
      return dot;
    }));
  }

  function scheduleNextPage() {
    clearTimeout(view.pageTimer);
    const story = view.story;
    if (!story || view.page >= story.scenes.length - 1) return;  // the last page stays
    const page = view.page;
    const text = story.scenes[page].text;
    const readingMs = Math.max(MIN_PAGE_MS, (text.split(/\s+/).length / WORDS_PER_SECOND) * 1000);
    const next = () => { if (view.story === story && view.page === page) turnTo(page + 1); };
    const speaking = speak(text, () => { clearTimeout(view.pageTimer); view.pageTimer = setTimeout(next, PAGE_PAUSE_MS); });
    // without a voice (or if it never ends) the page still turns at reading pace
    view.pageTimer = setTimeout(next, readingMs + PAGE_PAUSE_MS + (speaking ? 4000 : 0));
  }

  function readLastPage() {
    if (view.story && view.page === view.story.scenes.length - 1) speak(view.story.scenes[view.page].text, () => {});
  }

  function turnTo(page) {
    if (!view.story) return;
    view.page = Math.max(0, Math.min(page, view.story.scenes.length - 1));
    renderPage();
    if (view.page < view.story.scenes.length - 1) scheduleNextPage(); else { clearTimeout(view.pageTimer); readLastPage(); }
  }

  function showStory(story) {
    const isNew = !view.story || view.story.story_id !== story.story_id;
    view.story = story;
    show("story");
    if (isNew) turnTo(0); else renderPage();
  }

  function showPartial(partial) {
    if (view.story) return;
    const [title, ...lines] = partial.text.split("\n");
    $("story-title").textContent = title;
    $("scene-text").textContent = lines.join(" ");
    $("scene-picture").classList.add("hidden");
    $("scene-placeholder").classList.remove("hidden");
    $("scene-dots").replaceChildren();
    show("story");
  }

  function onPresence(p) {
    clearTimeout(view.leaveTimer);
    if (p.state === "arrived") {
      view.present = true;
      reset();
      show("hello");
    } else {
      view.present = false;
      view.leaveTimer = setTimeout(() => { reset(); show("attract"); }, graceMs);
    }
  }

  function onState(s) {
    reset();
    view.present = s.present;
    for (const p of s.pictures) view.pictures[p.scene_index] = p;
    if (s.story) showStory(s.story);
    else if (s.partial) showPartial(s.partial);
    else show(s.present ? "hello" : "attract");
  }

  function onIllustration(p) {
    if (view.story && p.story_id !== view.story.story_id) return;
    view.pictures[p.scene_index] = p;  // a later picture (diffusion) replaces the offline one
    if (view.story && p.scene_index === view.page) renderPicture();
  }

  $("story").addEventListener("click", () => {
    if (!view.story) return;
    turnTo(view.page >= view.story.scenes.length - 1 ? 0 : view.page + 1);
  });

  renderMute();
  const source = new EventSource("/events");
  const on = (name, fn) => source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
  on("state", onState);
  on("presence", onPresence);
  on("partial", showPartial);
  on("story", showStory);
  on("illustration", onIllustration);
  window.kioskView = view;  // read by the browser tests
})();
