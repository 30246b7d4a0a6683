// Coach web chat: renders /chat/history, posts each message to /chat/messages.
// Plain script, no build step and no outside resources. The coach's replies are
// plain text and are only ever set with textContent, never parsed as HTML.
"use strict";

(() => {
  // Only the page's own few words live here; the coach's messages carry the real
  // wording in the learner's language from the server's catalogs.
  const TEXTS = {
    en: {
      tagline: "Your learning coach",
      label: "Your message",
      send: "Send",
      retry: "Try again",
      conversation: "Conversation",
      choices: "Choices",
      you: "You: ",
      coach: "Coach: ",
      hint: {
        none: "Type a message",
        text: "Type your answer",
        choice: "Pick a button or type your answer",
        yes_no: "Yes or no?",
        rating: "Pick 1 to 5, or type it",
        number: "Type a number",
        date: "Type a date, like next Friday",
        topic: "Type a subject, like fractions",
      },
      offline: "Can't reach Coach right now. Check your connection and try again.",
      busy: "That's a lot of messages at once. Wait a moment, then try again.",
      rejected: "Coach couldn't take that message. Try saying it another way.",
      broken: "Something went wrong on our side. Please try again.",
      loadFailed: "Couldn't load your chat. Please try again in a moment.",
    },
    es: {
      tagline: "Tu coach de aprendizaje",
      label: "Tu mensaje",
      send: "Enviar",
      retry: "Reintentar",
      conversation: "Conversación",
      choices: "Opciones",
      you: "Tú: ",
      coach: "Coach: ",
      hint: {
        none: "Escribe un mensaje",
        text: "Escribe tu respuesta",
        choice: "Elige un botón o escribe tu respuesta",
        yes_no: "¿Sí o no?",
        rating: "Elige del 1 al 5, o escríbelo",
        number: "Escribe un número",
        date: "Escribe una fecha, como el próximo viernes",
        topic: "Escribe un tema, como fracciones",
      },
      offline: "No podemos conectar con Coach ahora. Revisa tu conexión e inténtalo de nuevo.",
      busy: "Son muchos mensajes a la vez. Espera un momento e inténtalo de nuevo.",
      rejected: "Coach no pudo recibir ese mensaje. Prueba a decirlo de otra forma.",
      broken: "Algo salió mal de nuestro lado. Inténtalo de nuevo.",
      loadFailed: "No se pudo cargar tu chat. Inténtalo de nuevo en un momento.",
    },
  };
  const lang = (navigator.language || "en").toLowerCase().startsWith("es") ? "es" : "en";
  const t = TEXTS[lang];

  // A reply normally takes well under a second; past this the network is the
  // likelier culprit, and a retry (same message_id) is safe.
  const TIMEOUT_MS = 30000;

  const $ = (id) => document.getElementById(id);
  const scroller = $("scroller");
  const log = $("log");
  const typing = $("typing");
  const form = $("composer");
  const input = $("input");
  const sendButton = $("send");
  const notice = $("notice");
  const noticeText = $("notice-text");
  const retryButton = $("retry");
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

  const state = {
    busy: false,
    // The message that failed, so sending it again reuses its id: if the first
    // attempt did reach the server, the server answers with the stored replies.
    failed: null, // {key, id}
    retry: null, // what "Try again" does
  };

  class RequestError extends Error {
    constructor(kind) {
      super(kind);
      this.kind = kind; // "offline" | "busy" | "rejected" | "broken"
    }
  }

  // crypto.randomUUID needs a secure context; a school server on plain http has none.
  function randomId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function request(url, options) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    try {
      let response;
      try {
        response = await fetch(url, {
          ...options,
          signal: controller.signal,
          credentials: "same-origin",
          cache: "no-store",
          headers: { Accept: "application/json", ...(options && options.headers) },
        });
      } catch {
        throw new RequestError("offline");
      }
      if (!response.ok) {
        const kind = response.status === 429 ? "busy" : response.status >= 500 ? "broken" : "rejected";
        throw new RequestError(kind);
      }
      try {
        return await response.json();
      } catch {
        throw new RequestError(controller.signal.aborted ? "offline" : "broken");
      }
    } finally {
      clearTimeout(timer);
    }
  }

  // -- rendering ----------------------------------------------------------------

  // A file sent with a reply (/mydata's export) becomes a download link under the
  // message. A Blob URL keeps it on this page: nothing is fetched or stored elsewhere.
  function attachmentLink(attachment) {
    const blob = new Blob([attachment.content], { type: attachment.media_type });
    const link = document.createElement("a");
    link.className = "attachment";
    link.href = URL.createObjectURL(blob);
    link.download = attachment.filename;
    link.textContent = attachment.filename;
    const line = document.createElement("p");
    line.append(link);
    return line;
  }

  function addMessage(direction, text, buttons, attachment) {
    const mine = direction === "in";
    const item = document.createElement("div");
    item.className = mine ? "msg learner" : "msg coach";
    const bubble = document.createElement("p");
    bubble.className = "bubble";
    const who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = mine ? t.you : t.coach;
    bubble.append(who, document.createTextNode(text));
    item.append(bubble);
    if (!mine && attachment) item.append(attachmentLink(attachment));
    if (!mine && buttons && buttons.length) {
      const group = document.createElement("div");
      group.className = "choices";
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", t.choices);
      for (const choice of buttons) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "choice";
        button.textContent = choice.label;
        button.dataset.value = choice.value;
        button.disabled = state.busy;
        group.append(button);
      }
      item.append(group);
    }
    log.append(item);
    return item;
  }

  // Buttons answer the question they came with: once the learner has answered,
  // older ones are switched off (and leave the tab order).
  function retireButtons() {
    for (const group of log.querySelectorAll(".choices:not(.retired)")) {
      group.classList.add("retired");
      for (const button of group.querySelectorAll("button")) button.disabled = true;
    }
  }

  function activeButtons() {
    return log.querySelectorAll(".choices:not(.retired) button");
  }

  function scrollDown() {
    scroller.scrollTo({ top: scroller.scrollHeight, behavior: reducedMotion.matches ? "auto" : "smooth" });
  }

  function setExpect(expect) {
    const type = (expect && expect.type) || "none";
    input.placeholder = t.hint[type] || t.hint.none;
  }

  function setBusy(busy) {
    state.busy = busy;
    sendButton.disabled = busy;
    form.setAttribute("aria-busy", String(busy));
    for (const button of activeButtons()) button.disabled = busy;
    typing.hidden = !busy;
    if (busy) scrollDown();
  }

  function showNotice(message, retry) {
    state.retry = retry;
    noticeText.textContent = message;
    notice.hidden = false;
  }

  function hideNotice() {
    state.retry = null;
    notice.hidden = true;
    noticeText.textContent = "";
  }

  // -- talking to the server ----------------------------------------------------

  // Sends {text} or {button}; `shown` is what appears as the learner's message,
  // `retry` what the "Try again" button does if this fails.
  async function send(payload, shown, retry) {
    if (state.busy) return false;
    const key = JSON.stringify(payload);
    const id = state.failed && state.failed.key === key ? state.failed.id : randomId();
    hideNotice();
    const mine = addMessage("in", shown, []);
    setBusy(true);
    try {
      const result = await request("/chat/messages", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ...payload, message_id: id }),
      });
      state.failed = null;
      retireButtons();
      for (const reply of result.replies || []) {
        addMessage("out", reply.text, reply.buttons, reply.attachment);
      }
      setExpect(result.expect);
      return true;
    } catch (error) {
      mine.remove();
      state.failed = { key, id };
      const kind = error instanceof RequestError ? error.kind : "broken";
      showNotice(t[kind], retry);
      return false;
    } finally {
      setBusy(false);
      scrollDown();
    }
  }

  async function loadHistory() {
    hideNotice();
    let data;
    try {
      data = await request("/chat/history");
    } catch {
      showNotice(t.loadFailed, loadHistory);
      return;
    }
    log.replaceChildren();
    // History keeps a pressed button's value ("warmup"); show its label, as when
    // it was pressed, if the choices just before offered that value.
    let offered = new Map();
    for (const message of data.messages || []) {
      if (message.direction === "in") {
        retireButtons();
        addMessage("in", offered.get(message.text) || message.text, []);
        offered = new Map();
      } else {
        addMessage("out", message.text, message.buttons);
        for (const b of message.buttons || []) offered.set(b.value, b.label);
      }
    }
    setExpect(data.expect);
    scroller.scrollTop = scroller.scrollHeight;
    if (!log.children.length) await greet();
  }

  // A first visit starts the conversation, so the coach introduces itself.
  function greet() {
    return send({ text: "hi" }, "hi", greet);
  }

  async function sendText(text) {
    if (input.value.trim() === text) input.value = "";
    const sent = await send({ text }, text, () => sendText(text));
    // Nothing typed is lost: a failed message goes back into the box for a retry.
    if (!sent && !input.value) input.value = text;
  }

  function pressButton(value, label) {
    return send({ button: value }, label, () => pressButton(value, label));
  }

  // After a reply, keep keyboard focus somewhere useful: the pressed button is
  // now disabled, so move on to the new choices, or to the input.
  function refocus(fromButton) {
    const here = document.activeElement;
    if (!fromButton && here && here !== document.body && !here.disabled) return;
    const next = activeButtons()[0];
    (next || input).focus({ preventScroll: true });
  }

  // -- wiring -------------------------------------------------------------------

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || state.busy) {
      input.focus();
      return;
    }
    await sendText(text);
  });

  log.addEventListener("click", async (event) => {
    const button = event.target.closest("button.choice");
    if (!button || button.disabled || state.busy) return;
    await pressButton(button.dataset.value, button.textContent);
    refocus(true);
  });

  retryButton.addEventListener("click", async () => {
    const retry = state.retry;
    if (!retry || state.busy) return;
    await retry();
    refocus(false);
  });

  document.documentElement.lang = lang;
  for (const element of document.querySelectorAll("[data-text]")) {
    element.textContent = t[element.dataset.text];
  }
  log.setAttribute("aria-label", t.conversation);
  setExpect(null);
  loadHistory();
})();
