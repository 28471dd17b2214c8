// The kiosk screen: attract → hello → story, live from the kiosk's own Server-Sent Events.
"use strict";
(function () {
  const PAGE_MS = 9000;
  const graceMs = Number(document.body.dataset.graceMs || 20000);
  const $ = (id) => document.getElementById(id);
  const view = { story: null, pictures: {}, page: 0, present: false, pageTimer: null, leaveTimer: null };

  function show(screen) {
    for (const id of ["attract", "hello", "story"]) $(id).classList.toggle("hidden", id !== screen);
  }

  function reset() {
    view.story = null; view.pictures = {}; view.page = 0;
    clearInterval(view.pageTimer); view.pageTimer = null;
  }

  function renderPage() {
    const story = view.story;
    if (!story) return;
    $("story-title").textContent = story.title;
    $("scene-text").textContent = story.scenes[view.page].text;
    const picture = view.pictures[view.page];
    const img = $("scene-picture");
    if (picture) {
      if (img.getAttribute("src") !== picture.url) img.src = picture.url;
      img.alt = "A picture of this part of the story";
      img.classList.remove("hidden");
      $("scene-placeholder").classList.add("hidden");
    } else {
      img.classList.add("hidden");
      $("scene-placeholder").classList.remove("hidden");
    }
    const dots = $("scene-dots");
    dots.replaceChildren(...story.scenes.map((_, i) => {
      const dot = document.createElement("button");
      dot.setAttribute("aria-label", "page " + (i + 1));
      dot.setAttribute("aria-current", String(i === view.page));
      dot.addEventListener("click", (e) => { e.stopPropagation(); turnTo(i); });
      return dot;
    }));
  }

  function turnTo(page) {
    if (!view.story) return;
    view.page = (page + view.story.scenes.length) % view.story.scenes.length;
    renderPage();
  }

  function showStory(story) {
    if (!view.story || view.story.story_id !== story.story_id) { view.page = 0; }
    view.story = story;
    show("story");
    renderPage();
    clearInterval(view.pageTimer);
    view.pageTimer = setInterval(() => turnTo(view.page + 1), PAGE_MS);
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

  $("story").addEventListener("click", () => turnTo(view.page + 1));

  const source = new EventSource("/events");
  const on = (name, fn) => source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
  on("state", onState);
  on("presence", onPresence);
  on("partial", showPartial);
  on("story", showStory);
  on("illustration", (p) => {
    if (view.story && p.story_id !== view.story.story_id) return;
    view.pictures[p.scene_index] = p;
    if (view.story) renderPage();
  });
  window.kioskView = view;  // read by the browser tests
})();
