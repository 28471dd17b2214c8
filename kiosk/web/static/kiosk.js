// The kiosk screen: attract → hello → story, live from the kiosk's own Server-Sent Events.
// One scene at a time: its picture large, its words large, read aloud by the kiosk's voice with each word
// lit as it is spoken; a page turns when its narration ends (or by the browser's voice, or a word-count
// timer, where no narration comes) and by touch.
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

  // -- read-aloud: the kiosk's own voice ------------------------------------------------------------
  // Each page's narration comes from the narrate service in parts (see kiosk/voice/): the page plays them
  // in order, lights up each word as it is spoken, and turns when the last part ends. Without narration
  // (no voice installed, a scene it could not read, nothing within NARRATION_WAIT_MS) it asks the
  // browser's speechSynthesis, and without that it turns at reading pace.
  const NARRATION_WAIT_MS = 2500;
  const audio = $("narration");
  const speech = "speechSynthesis" in window ? window.speechSynthesis : null;
  const highlights = window.CSS && CSS.highlights && window.Highlight ? CSS.highlights : null;
  Object.assign(view, {
    session: null, narration: {}, reading: null, readings: 0, waitTimer: null, fallbackTimer: null,
    played: [], ended: [], lit: [], fallbacks: [], voiceStatus: "waiting",
  });

  function childVoice() {
    const voices = speech ? speech.getVoices() : [];
    const english = voices.filter((v) => v.lang && v.lang.toLowerCase().startsWith("en"));
    return english.find((v) => /female|child|kid|samantha|zira|libby|sonia/i.test(v.name)) || english[0] || null;
  }

  function speak(text, onDone) {
    view.spoken.push(text);  // what the page asked the browser to read (the browser tests check it)
    if (!speech || view.muted) return false;
    try {
      speech.cancel();
      const utterance = new SpeechSynthesisUtterance(text);
      const voice = childVoice();
      if (voice) utterance.voice = voice;
      utterance.rate = 0.85;
      utterance.pitch = 1.15;
      utterance.onend = onDone;  // an error (a browser with no voices) leaves the reading timer to turn the page
      speech.speak(utterance);
      return true;
    } catch (err) {
      return false;  // no voice must never stop the story
    }
  }

  function readingMs(text) {
    return Math.max(MIN_PAGE_MS, (text.split(/\s+/).length / WORDS_PER_SECOND) * 1000);
  }

  // A new visit's narration replaces the last one's; returns whether the visit changed.
  function enterSession(id) {
    if (!id || id === view.session) return false;
    view.session = id;
    view.narration = {};
    return true;
  }

  function onNarration(p) {
    if (view.session && p.session_id !== view.session) return;  // a late part of the last visit
    let n = view.narration[p.scene_index];
    if (!n || n.text !== p.text) n = view.narration[p.scene_index] = { text: p.text, parts: p.parts, items: [], skipped: null };
    if (p.parts === 0) n.skipped = p.skipped || "no narration";
    else { n.parts = p.parts; n.items[p.part] = p; }
    const r = view.reading;
    if (r && r.state === "waiting" && r.scene === p.scene_index && r.text === p.text) continueReading(r);
  }

  // Read page `scene` (its `text`); `onFinished` runs once when it has been read, however it was read.
  function startReading(scene, text, onFinished) {
    const r = view.reading;
    if (r && r.scene === scene && r.text === text) {  // already reading it (it began while the story was written)
      r.onFinished = onFinished;
      if (r.state === "done" && onFinished) onFinished();
      return;
    }
    stopReading();
    view.reading = { scene, text, part: 0, state: "waiting", onFinished, item: null, id: ++view.readings };
    continueReading(view.reading);
  }

  function continueReading(r) {
    clearTimeout(view.waitTimer);
    const n = view.narration[r.scene];
    const mine = n && n.text === r.text ? n : null;
    const item = mine && mine.items[r.part];
    if (item) { playPart(r, item); return; }
    if (mine && mine.skipped) { if (r.part === 0) fallBack(r, mine.skipped); else endReading(r); return; }
    view.waitTimer = setTimeout(() => {
      if (view.reading !== r || r.state !== "waiting") return;
      if (r.part === 0) fallBack(r, "no narration arrived"); else endReading(r);
    }, NARRATION_WAIT_MS);
  }

  function playPart(r, item) {
    r.state = "playing";
    r.item = item;
    view.voiceStatus = "narration";
    audio.muted = view.muted;
    audio.src = item.url;
    view.played.push({ scene: r.scene, part: item.part, url: item.url });
    const playing = audio.play();
    if (playing && playing.catch) {
      playing.catch((err) => {
        if (view.reading !== r || r.item !== item || r.state !== "playing") return;
        if (r.part === 0) fallBack(r, "audio could not play: " + err.name); else endReading(r);
      });
    }
    requestAnimationFrame(() => followWords(r, item));
  }

  function followWords(r, item) {
    if (view.reading !== r || r.item !== item || r.state !== "playing") return;
    const t = audio.currentTime;
    let word = null;
    for (const w of item.words) if (w.t0 <= t) word = w; else break;
    light(word);
    requestAnimationFrame(() => followWords(r, item));
  }

  function light(word) {
    if (!highlights) return;
    const node = $("scene-text").firstChild;
    const r = view.reading;
    const onPage = view.story && r && view.page === r.scene && node && node.nodeType === Node.TEXT_NODE
      && node.textContent === r.text;
    if (!word || !onPage || word.end > node.textContent.length) { highlights.delete("spoken"); return; }
    const last = view.lit[view.lit.length - 1];
    if (!last || last.scene !== r.scene || last.start !== word.start) {
      view.lit.push({ scene: r.scene, start: word.start, word: r.text.slice(word.start, word.end) });
    }
    const range = new Range();
    range.setStart(node, word.start);
    range.setEnd(node, word.end);
    highlights.set("spoken", new Highlight(range));
  }

  audio.addEventListener("ended", () => {
    const r = view.reading;
    if (!r || r.state !== "playing") return;
    view.ended.push({ scene: r.scene, part: r.part });
    const n = view.narration[r.scene];
    r.part += 1;
    if (n && n.text === r.text && r.part < n.parts) { r.state = "waiting"; continueReading(r); } else endReading(r);
  });

  audio.addEventListener("error", () => {
    const r = view.reading;
    if (!r || r.state !== "playing") return;
    if (r.part === 0) fallBack(r, "audio could not load"); else endReading(r);
  });

  function fallBack(r, reason) {
    r.state = "fallback";
    const speaking = speak(r.text, () => { if (view.reading === r && r.state === "fallback") endReading(r); });
    view.voiceStatus = (speaking ? "browser voice: " : "reading timer: ") + reason;
    view.fallbacks.push({ scene: r.scene, reason, speech: speaking });
    // without a voice (or if it never ends) the page still turns at reading pace
    view.fallbackTimer = setTimeout(() => {
      if (view.reading === r && r.state === "fallback") endReading(r);
    }, readingMs(r.text) + (speaking ? 4000 : 0));
  }

  function endReading(r) {
    if (r.state === "done") return;
    r.state = "done";
    clearTimeout(view.waitTimer);
    clearTimeout(view.fallbackTimer);
    if (highlights) highlights.delete("spoken");
    if (r.onFinished) r.onFinished();
  }

  function stopReading() {
    clearTimeout(view.waitTimer);
    clearTimeout(view.fallbackTimer);
    if (view.reading) view.reading.state = "done";
    view.reading = null;
    audio.pause();
    if (highlights) highlights.delete("spoken");
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
    audio.muted = view.muted;  // the story goes on at the voice's pace, silently
    if (view.muted && speech) speech.cancel();
    renderMute();
  });

  // -- screens -----------------------------------------------------------------------------------
  function show(screen) {
    for (const id of ["attract", "hello", "story"]) $(id).classList.toggle("hidden", id !== screen);
  }

  function reset() {
    view.story = null; view.pictures = {}; view.page = 0; view.partial = false;
    clearTimeout(view.pageTimer); view.pageTimer = null;
    stopReading();
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

  function readPage() {
    clearTimeout(view.pageTimer);
    const story = view.story;
    const page = view.page;
    const last = page >= story.scenes.length - 1;  // the last page stays
    const next = () => { if (view.story === story && view.page === page) turnTo(page + 1); };
    startReading(page, story.scenes[page].text, last ? null : () => {
      clearTimeout(view.pageTimer);
      view.pageTimer = setTimeout(next, PAGE_PAUSE_MS);
    });
  }

  function turnTo(page) {
    if (!view.story) return;
    view.page = Math.max(0, Math.min(page, view.story.scenes.length - 1));
    renderPage();
    readPage();
  }

  function showStory(story) {
    enterSession(story.session_id);
    const isNew = !view.story || view.story.story_id !== story.story_id;
    view.story = story;
    show("story");
    if (isNew) turnTo(0); else renderPage();
  }

  function showPartial(partial) {
    if (enterSession(partial.session_id)) reset();
    if (view.story) return;
    view.partial = true;
    const [title, ...lines] = partial.text.split("\n");
    $("story-title").textContent = title;
    $("scene-text").textContent = lines.join(" ");
    $("scene-picture").classList.add("hidden");
    $("scene-placeholder").classList.remove("hidden");
    $("scene-dots").replaceChildren();
    show("story");
    if (lines.length) startReading(0, lines[0], null);  // the opening is final: its narration may begin now
  }

  function onPresence(p) {
    clearTimeout(view.leaveTimer);
    if (p.state === "arrived") {
      view.present = true;
      // the visit's story may already be on screen (its words can overtake the arrival on the bus)
      if (enterSession(p.session_id) || !(view.story || view.partial)) {
        reset();
        show("hello");
      }
    } else {
      view.present = false;
      view.leaveTimer = setTimeout(() => { reset(); show("attract"); }, graceMs);
    }
  }

  function onState(s) {
    reset();
    view.present = s.present;
    view.session = s.session_id;
    view.narration = {};
    for (const n of s.narration || []) onNarration(n);
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
  on("narration", onNarration);
  window.kioskView = view;  // read by the browser tests
})();
