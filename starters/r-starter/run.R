# Run the R chunks of gpt_experiments.Rmd in order, without knitr:  Rscript run.R [--quick]
# (In RStudio you can knit the .Rmd instead.) --quick (a smoke run) uses 4 prompts x 2 temperatures x 1 sample.
QUICK <- "--quick" %in% commandArgs(trailingOnly = TRUE)
lines <- readLines("gpt_experiments.Rmd", warn = FALSE)
starts <- grep("^```\\{r", lines)
code <- character()
for (s in starts) {
  e <- which(grepl("^```\\s*$", lines) & seq_along(lines) > s)[1]
  if (e > s + 1) code <- c(code, lines[(s + 1):(e - 1)])
}
result <- tryCatch({
  for (expr in parse(text = code)) eval(expr, envir = globalenv())
  0
}, error = function(e) {
  message("error: ", conditionMessage(e))
  1
})
quit(status = result, save = "no")
