# What R survey's rake() does when the margins cannot be met, used by
# tests/weight/test_rake_contract.py.
#
#   cd tests/reference && Rscript r/make_rake_contract_reference.R
#
# Needs R with survey 4.1-1 and jsonlite. Writes data/rake_contract.csv (synthetic,
# fixed seed) and rake_contract.json: per case the R call, whether rake() converged
# (it only warns when it does not), its warning or error, the weighted total it
# reached for every margin category and, when it ran, its weights. Values are printed
# with sprintf("%.17g").

suppressMessages({
  library(survey)
  library(jsonlite)
})
stopifnot(packageVersion("survey") == "4.1.1")
options(warn = 1)

fmt <- function(x) sprintf("%.17g", as.numeric(x))
dir.create("data", showWarnings = FALSE)

set.seed(20261130)
n <- 240
base <- data.frame(
  resp_id = 1:n,
  age_group = sample(1:4, n, TRUE, prob = c(0.15, 0.25, 0.30, 0.30)),
  sex = sample(1:2, n, TRUE),
  wijk = sample(1:4, n, TRUE, prob = c(0.2, 0.3, 0.3, 0.2)),
  w0 = round(runif(n, 0.5, 2.5), 3)
)
# conflict: every respondent of age group 1 lives in wijk 1, but age group 1 has
# 30,000 residents and wijk 1 only 15,000: no weights can meet both margins.
conflict <- base
conflict$wijk[conflict$age_group == 1] <- 1
# no_wijk4: nobody from wijk 4 in the sample, which has 20,000 residents.
no_wijk4 <- base[base$wijk != 4, ]
samples <- rbind(
  cbind(sample = "base", base),
  cbind(sample = "conflict", conflict),
  cbind(sample = "no_wijk4", no_wijk4)
)
write.csv(samples, "data/rake_contract.csv", row.names = FALSE)

pop_age <- data.frame(age_group = 1:4, Freq = c(30000, 25000, 25000, 20000))
pop_sex <- data.frame(sex = 1:2, Freq = c(49000, 51000))
pop_wijk <- data.frame(wijk = 1:4, Freq = c(15000, 35000, 30000, 20000))
margins_py <- list(
  age_group = lapply(seq_len(nrow(pop_age)), function(i) list(pop_age$age_group[i], pop_age$Freq[i])),
  sex = lapply(seq_len(nrow(pop_sex)), function(i) list(pop_sex$sex[i], pop_sex$Freq[i])),
  wijk = lapply(seq_len(nrow(pop_wijk)), function(i) list(pop_wijk$wijk[i], pop_wijk$Freq[i]))
)

cases <- list()
add_case <- function(id, sample_name, maxit, epsilon) {
  d <- samples[samples$sample == sample_name, ]
  des <- svydesign(ids = ~1, weights = ~w0, data = d)
  r_call <- sprintf(
    "rake(svydesign(ids = ~1, weights = ~w0, data = subset(samples, sample == \"%s\")), list(~age_group, ~sex, ~wijk), list(pop_age, pop_sex, pop_wijk), control = list(maxit = %d, epsilon = %s))",
    sample_name, maxit, format(epsilon)
  )
  warnings <- character(0)
  rk <- tryCatch(
    withCallingHandlers(
      rake(des, list(~age_group, ~sex, ~wijk), list(pop_age, pop_sex, pop_wijk),
           control = list(maxit = maxit, epsilon = epsilon)),
      warning = function(w) {
        warnings <<- c(warnings, trimws(conditionMessage(w)))
        invokeRestart("muffleWarning")
      }
    ),
    error = function(e) structure(trimws(conditionMessage(e)), class = "r_error")
  )
  rec <- list(sample = sample_name, weights = "w0", margins = margins_py,
              max_iter = maxit, tol = epsilon, r_call = r_call)
  if (inherits(rk, "r_error")) {
    rec$r_status <- "error"
    rec$r_error <- as.character(rk)
  } else {
    w <- weights(rk)
    rec$r_status <- if (length(warnings)) "not_converged" else "converged"
    rec$r_warnings <- as.list(warnings)
    rec$r_achieved_call <- "tapply(weights(<rake>), <variable>, sum)"
    rec$r_achieved <- lapply(c(age_group = "age_group", sex = "sex", wijk = "wijk"), function(v) {
      s <- tapply(w, d[[v]], sum)
      lapply(names(s), function(k) list(as.integer(k), fmt(s[[k]])))
    })
    rec$weights_r <- fmt(w)
  }
  cases[[id]] <<- rec
}

add_case("feasible", "base", 100, 1e-10)
add_case("feasible_maxit_2", "base", 2, 1e-10)
add_case("conflict", "conflict", 100, 1e-10)
add_case("empty_category", "no_wijk4", 100, 1e-10)

meta <- list(
  generated_by = "tests/reference/r/make_rake_contract_reference.R",
  r_version = R.version.string,
  survey_version = as.character(packageVersion("survey")),
  data = "data/rake_contract.csv (column sample selects the case's rows)"
)
writeLines(toJSON(list(meta = meta, cases = cases), auto_unbox = TRUE, pretty = TRUE, digits = NA, null = "null"),
           "rake_contract.json")
