%%% @doc Top supervisor of the stand-in: the pg scope `reckon_db_pg' first
%%% (as reckon-db supervises it), then the supervisor of emitter pools.
-module(reckon_db_sup).
-behaviour(supervisor).
-export([start_link/0, init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Scope = #{id => pg, start => {pg, start_link, [reckon_db_pg]}},
    Emitters = #{id => reckon_db_emitter_sup, type => supervisor,
                 start => {reckon_db_emitter_sup, start_link, []}},
    {ok, {#{strategy => one_for_one, intensity => 10, period => 60}, [Scope, Emitters]}}.
