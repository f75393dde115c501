# Reference weights for the weight stage's trimming (tests/weight/test_trim_r_reference.py).
#
#   cd tests/reference && Rscript r/make_trim_reference.R
#
# Needs R with survey 4.1-1 and jsonlite. Reads data/panel.csv (written by make_reference.R)
# and writes trimming.json. Every value is printed with sprintf("%.17g") and stored next to
# the R call that produced it.
#
# The project's trimming rule (survey_pipeline/core/calibration.py, trim_weights), rebuilt
# here from survey's rake() alone:
#   0. w <- weights(rake(design, margins, control = list(maxit, epsilon = tol)))
#   1. stop when the last rake converged and every w lies in [lower, upper] x mean(w)
#      (up to a relative 1e-6); stop unconverged after max_rounds rounds;
#   2. cap w at [lower, upper] x mean(w), rake the capped weights (as the design's weights)
#      to the same margins again, count the capped rows, go to 1.
# R's own trimWeights() is a different rule (bounds in absolute units, the trimmed excess
# spread over the other rows, no re-raking) and is not what the pipeline publishes.

suppressMessages({
  library(survey)
  library(jsonlite)
})
stopifnot(packageVersion("survey") == "4.1.1")
options(warn = 1)

fmt <- function(x) sprintf("%.17g", as.numeric(x))
BOUND_TOL <- 1e-6

# rake() only warns when it does not converge: turn the warning into a flag.
rake_flagged <- function(des, formulas, pops, control) {
  converged <- TRUE
  raked <- withCallingHandlers(
    rake(des, formulas, pops, control = control),
    warning = function(w) {
      if (grepl("converge", conditionMessage(w))) {
        converged <<- FALSE
        invokeRestart("muffleWarning")
      }
    }
  )
  list(weights = as.numeric(weights(raked)), converged = converged)
}

trim_rake <- function(data, base, formulas, pops, lower, upper, max_rounds, control) {
  data$w_start <- if (is.null(base)) 1 else data[[base]]
  first <- rake_flagged(svydesign(ids = ~1, weights = ~w_start, data = data), formulas, pops, control)
  w <- first$weights
  ok <- first$converged
  lo <- if (is.null(lower)) 0 else lower
  hi <- if (is.null(upper)) Inf else upper
  trimmed <- rep(FALSE, nrow(data))
  rounds <- 0
  converged <- FALSE
  repeat {
    m <- mean(w)
    outside <- w < lo * m * (1 - BOUND_TOL) | w > hi * m * (1 + BOUND_TOL)
    if (ok && !any(outside)) {
      converged <- TRUE
      break
    }
    if (rounds == max_rounds) break
    rounds <- rounds + 1
    trimmed <- trimmed | outside
    data$w_capped <- pmin(pmax(w, lo * m), hi * m)
    step <- rake_flagged(svydesign(ids = ~1, weights = ~w_capped, data = data), formulas, pops, control)
    w <- step$weights
    ok <- step$converged
  }
  list(weights = w, rounds = rounds, converged = converged, n_trimmed = sum(trimmed))
}

margins_py <- function(pops) {
  lapply(pops, function(p) lapply(seq_len(nrow(p)), function(i) list(p[i, 1], p[i, 2])))
}

panel <- read.csv(file.path("data", "panel.csv"), stringsAsFactors = FALSE)
pop_age_group <- data.frame(age_group = 1:4, Freq = c(21000, 24000, 19000, 16000))
pop_sex <- data.frame(sex = 1:2, Freq = c(39500, 40500))
pop_wijk <- data.frame(wijk = 1:8, Freq = c(18000, 13000, 12000, 9000, 8000, 8000, 6000, 6000))
ctrl <- list(maxit = 100, epsilon = 1e-10)

cases <- list()
add_trim <- function(id, wave, base, pops, lower, upper, max_rounds) {
  data <- panel[panel$wave == wave, ]
  formulas <- lapply(names(pops), function(v) as.formula(paste0("~", v)))
  res <- trim_rake(data, base, formulas, unname(pops), lower, upper, max_rounds, ctrl)
  base_text <- if (is.null(base)) "~1" else paste0("~", base)
  rake_text <- sprintf("rake(svydesign(ids = ~1, weights = %%s, data = subset(panel, wave == %d)), list(%s), list(%s), control = list(maxit = 100, epsilon = 1e-10))",
                       wave, paste0("~", names(pops), collapse = ", "), paste0("pop_", names(pops), collapse = ", "))
  cases[[id]] <<- list(
    data = "panel", filter = list(wave = list(wave)), weights = base,
    margins = margins_py(pops), trim_lower = lower, trim_upper = upper, max_rounds = max_rounds,
    r_call = paste0(
      "trim_rake() in r/make_trim_reference.R: w <- weights(", sprintf(rake_text, base_text), "); ",
      "repeat { m <- mean(w); stop if all(w within [lower, upper] * m, rel. 1e-6) or rounds == max_rounds; ",
      "w <- weights(", sprintf(rake_text, "~pmin(pmax(w, lower * m), upper * m)"), ") }"
    ),
    converged = res$converged,
    rounds = res$rounds,
    n_trimmed = res$n_trimmed,
    weights_r = if (res$converged) fmt(res$weights) else NULL
  )
}

pops <- list(age_group = pop_age_group, sex = pop_sex, wijk = pop_wijk)
add_trim("panel2020_both_bounds", 2020, "w0", pops, 0.3, 3.0, 50)
add_trim("panel2020_upper_only", 2020, "w0", pops, NULL, 3.5, 50)
add_trim("panel2021_lower_only_other_order", 2021, "w0", rev(pops), 0.35, NULL, 50)
add_trim("panel2021_equal_base", 2021, NULL, pops, 0.3, 3.0, 50)
add_trim("panel2020_bounds_too_tight", 2020, "w0", pops, 0.9, 1.1, 5)

meta <- list(r_version = R.version.string, survey_version = as.character(packageVersion("survey")),
             bound_tol = BOUND_TOL)
writeLines(toJSON(list(meta = meta, trimming = cases), auto_unbox = TRUE, null = "null", pretty = TRUE,
                  digits = NA), "trimming.json")
cat("reference values written\n")
