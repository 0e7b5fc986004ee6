// Tailwind CSS 3.4 configuration for Switchboard.
// Build: `make css` (or `npm run css`); the output static/css/app.css is committed and embedded.
// Class names must appear as complete strings in the files below (no string concatenation).

/** @type {import('tailwindcss').Config} */
module.exports = {
  content: [
    "./views/**/*.templ",
    "./views/**/*.go",
    "./static/js/app.js",
  ],
  darkMode: "media",
  theme: {
    extend: {
      colors: {
        // Price movement colours for the ticker (text-up, bg-down/10, ...).
        up: "#16a34a",
        down: "#dc2626",
      },
    },
  },
  plugins: [],
};
